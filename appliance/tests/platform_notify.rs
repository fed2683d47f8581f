//! Readiness notification against a real datagram socket standing in for systemd. One test per
//! binary because it sets NOTIFY_SOCKET for the process.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use appliance::platform::{notify_ready, notify_status, notify_stopping};

#[test]
fn notifications_reach_the_socket_and_are_noops_without_it() {
    std::env::remove_var("NOTIFY_SOCKET");
    notify_ready().expect("no-op without NOTIFY_SOCKET");

    let path = std::env::temp_dir().join(format!("appliance-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);

    let recv = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    notify_status("replaying journal\n40%").unwrap();
    assert_eq!(recv(), "STATUS=replaying journal 40%\n");
    notify_ready().unwrap();
    assert_eq!(recv(), "READY=1\n");
    notify_stopping().unwrap();
    assert_eq!(recv(), "STOPPING=1\n");

    std::env::remove_var("NOTIFY_SOCKET");
    let _ = std::fs::remove_file(&path);
}

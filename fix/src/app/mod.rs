//! Application messages: typed, zero-copy views of the orders a client sends and encoders of
//! the reports the venue sends back, plus exact price conversion.
//!
//! Inbound: NewOrderSingle (D), OrderCancelRequest (F), OrderCancelReplaceRequest (G),
//! OrderMassCancelRequest (q), MarketDataRequest (V, [`market_data`]). Outbound: ExecutionReport (8), OrderCancelReject (9),
//! OrderMassCancelReport (r), market data W, X and Y ([`market_data`]); BusinessMessageReject (j) is sent through
//! [`crate::Session::send_business_reject`].
//!
//! Client side (for initiators such as the bench's load generator): [`client`] encodes D, F,
//! G, q and reads ExecutionReports.
//!
//! The views borrow the message bytes and keep prices as the decimal text the client sent:
//! the scale depends on the instrument, which is known only after Symbol is looked up, so the
//! caller converts with [`price::to_units`] and checks the tick with [`price::check_tick`].

pub mod client;
pub mod inbound;
pub mod market_data;
pub mod outbound;
pub mod price;

pub use inbound::{
    AppReject, MassCancelScope, NewOrderSingle, OrdType, OrderCancelReplaceRequest,
    OrderCancelRequest, OrderMassCancelRequest, Side, TimeInForce,
};
pub use outbound::{
    BusinessMessageReject, CxlRejResponseTo, ExecType, ExecutionReport, OrdStatus,
    OrderCancelReject, OrderMassCancelReport,
};

//! Reject reason codes and the texts QuickFIX puts in Text (58), so that counterparties and the
//! acceptance scripts see the same words from this engine as from QuickFIX.

/// SessionRejectReason (373) values of FIX 4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionRejectReason {
    /// 0
    InvalidTagNumber = 0,
    /// 1
    RequiredTagMissing = 1,
    /// 2
    TagNotDefinedForMessageType = 2,
    /// 3
    UndefinedTag = 3,
    /// 4
    TagSpecifiedWithoutValue = 4,
    /// 5
    ValueIsIncorrect = 5,
    /// 6
    IncorrectDataFormat = 6,
    /// 7
    DecryptionProblem = 7,
    /// 8
    SignatureProblem = 8,
    /// 9
    CompIdProblem = 9,
    /// 10
    SendingTimeAccuracyProblem = 10,
    /// 11
    InvalidMsgType = 11,
    /// 12
    XmlValidationError = 12,
    /// 13
    TagAppearsMoreThanOnce = 13,
    /// 14
    TagSpecifiedOutOfRequiredOrder = 14,
    /// 15
    RepeatingGroupFieldsOutOfOrder = 15,
    /// 16
    IncorrectNumInGroupCount = 16,
    /// 17
    NonDataValueIncludesFieldDelimiter = 17,
    /// 99
    Other = 99,
}

impl SessionRejectReason {
    /// The numeric code written in 373.
    #[inline]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The Text (58) QuickFIX sends with this reason.
    pub fn text(self) -> &'static str {
        use SessionRejectReason::*;
        match self {
            InvalidTagNumber => "Invalid tag number",
            RequiredTagMissing => "Required tag missing",
            TagNotDefinedForMessageType => "Tag not defined for this message type",
            UndefinedTag => "Undefined Tag",
            TagSpecifiedWithoutValue => "Tag specified without a value",
            ValueIsIncorrect => "Value is incorrect (out of range) for this tag",
            IncorrectDataFormat => "Incorrect data format for value",
            DecryptionProblem => "Decryption problem",
            SignatureProblem => "Signature problem",
            CompIdProblem => "CompID problem",
            SendingTimeAccuracyProblem => "SendingTime accuracy problem",
            InvalidMsgType => "Invalid MsgType",
            XmlValidationError => "XML validation error",
            TagAppearsMoreThanOnce => "Tag appears more than once",
            TagSpecifiedOutOfRequiredOrder => "Tag specified out of required order",
            RepeatingGroupFieldsOutOfOrder => "Repeating group fields out of order",
            IncorrectNumInGroupCount => "Incorrect NumInGroup count for repeating group",
            NonDataValueIncludesFieldDelimiter => "Non Data value includes field delimiter",
            Other => "Other",
        }
    }
}

/// BusinessRejectReason (380) values of FIX 4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BusinessRejectReason {
    /// 0
    Other = 0,
    /// 1
    UnknownId = 1,
    /// 2
    UnknownSecurity = 2,
    /// 3
    UnsupportedMessageType = 3,
    /// 4
    ApplicationNotAvailable = 4,
    /// 5
    ConditionallyRequiredFieldMissing = 5,
    /// 6
    NotAuthorized = 6,
    /// 7
    DeliverToFirmNotAvailable = 7,
}

impl BusinessRejectReason {
    /// The numeric code written in 380.
    #[inline]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The Text (58) QuickFIX sends with this reason.
    pub fn text(self) -> &'static str {
        use BusinessRejectReason::*;
        match self {
            Other => "Other",
            UnknownId => "Unknown ID",
            UnknownSecurity => "Unknown Security",
            UnsupportedMessageType => "Unsupported Message Type",
            ApplicationNotAvailable => "Application not available",
            ConditionallyRequiredFieldMissing => "Conditionally Required Field Missing",
            NotAuthorized => "Not authorized",
            DeliverToFirmNotAvailable => "DeliverTo firm not available at this time",
        }
    }
}

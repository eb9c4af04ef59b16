//! Validated domain types. Nothing here does I/O; every type is built only
//! through a parse step that reports each violation with its field path.

mod country;
mod date;
mod duplicates;
mod meeting;
mod names;
mod party;
mod text;
mod violations;

pub use country::CountryCode;
pub use date::{parse_date, parse_meeting_date};
pub use duplicates::{NameMatch, Report, merge, same_meeting};
pub use meeting::limits;
pub use meeting::{
    Anniversary, Location, MeetingFormat, NAME_TOKEN_VERSION, NewMeeting, Participant,
    RawAnniversary, RawLocation, RawMeeting, RawParticipant, RawSource, RequestId, Source,
    TOPIC_KEY_VERSION, name_tokens, topic_key,
};
pub use names::{NameKey, words_match};
pub use party::{OrganizationCode, Party, PartyPair, split_party_keys};
pub use text::{fold_case, parse_text, quote};
pub use violations::{FieldViolation, Violations};

import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MeetingFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEETING_FORMAT_UNSPECIFIED: _ClassVar[MeetingFormat]
    MEETING_FORMAT_IN_PERSON: _ClassVar[MeetingFormat]
    MEETING_FORMAT_PHONE_CALL: _ClassVar[MeetingFormat]
    MEETING_FORMAT_VIDEO_CALL: _ClassVar[MeetingFormat]

class DuplicatePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DUPLICATE_POLICY_UNSPECIFIED: _ClassVar[DuplicatePolicy]
    DUPLICATE_POLICY_KEEP: _ClassVar[DuplicatePolicy]
    DUPLICATE_POLICY_MERGE: _ClassVar[DuplicatePolicy]
    DUPLICATE_POLICY_REJECT: _ClassVar[DuplicatePolicy]

class MeetingEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEETING_EVENT_KIND_UNSPECIFIED: _ClassVar[MeetingEventKind]
    MEETING_EVENT_KIND_CREATED: _ClassVar[MeetingEventKind]
    MEETING_EVENT_KIND_UPDATED: _ClassVar[MeetingEventKind]
    MEETING_EVENT_KIND_DELETED: _ClassVar[MeetingEventKind]
    MEETING_EVENT_KIND_MERGED: _ClassVar[MeetingEventKind]
MEETING_FORMAT_UNSPECIFIED: MeetingFormat
MEETING_FORMAT_IN_PERSON: MeetingFormat
MEETING_FORMAT_PHONE_CALL: MeetingFormat
MEETING_FORMAT_VIDEO_CALL: MeetingFormat
DUPLICATE_POLICY_UNSPECIFIED: DuplicatePolicy
DUPLICATE_POLICY_KEEP: DuplicatePolicy
DUPLICATE_POLICY_MERGE: DuplicatePolicy
DUPLICATE_POLICY_REJECT: DuplicatePolicy
MEETING_EVENT_KIND_UNSPECIFIED: MeetingEventKind
MEETING_EVENT_KIND_CREATED: MeetingEventKind
MEETING_EVENT_KIND_UPDATED: MeetingEventKind
MEETING_EVENT_KIND_DELETED: MeetingEventKind
MEETING_EVENT_KIND_MERGED: MeetingEventKind

class Meeting(_message.Message):
    __slots__ = ("id", "date", "location", "participants", "anniversary", "topics", "summary", "sources", "country_codes", "create_time", "update_time", "etag", "end_date", "format", "organization_codes", "merged_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    ANNIVERSARY_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_CODES_FIELD_NUMBER: _ClassVar[int]
    MERGED_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    date: str
    location: Location
    participants: _containers.RepeatedCompositeFieldContainer[Participant]
    anniversary: Anniversary
    topics: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    country_codes: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    end_date: str
    format: MeetingFormat
    organization_codes: _containers.RepeatedScalarFieldContainer[str]
    merged_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., date: _Optional[str] = ..., location: _Optional[_Union[Location, _Mapping]] = ..., participants: _Optional[_Iterable[_Union[Participant, _Mapping]]] = ..., anniversary: _Optional[_Union[Anniversary, _Mapping]] = ..., topics: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., country_codes: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., end_date: _Optional[str] = ..., format: _Optional[_Union[MeetingFormat, str]] = ..., organization_codes: _Optional[_Iterable[str]] = ..., merged_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Location(_message.Message):
    __slots__ = ("city", "country_code")
    CITY_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    city: str
    country_code: str
    def __init__(self, city: _Optional[str] = ..., country_code: _Optional[str] = ...) -> None: ...

class Participant(_message.Message):
    __slots__ = ("name", "title", "country_code", "organization_code", "aliases")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    country_code: str
    organization_code: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., country_code: _Optional[str] = ..., organization_code: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class Anniversary(_message.Message):
    __slots__ = ("years", "occasion")
    YEARS_FIELD_NUMBER: _ClassVar[int]
    OCCASION_FIELD_NUMBER: _ClassVar[int]
    years: int
    occasion: str
    def __init__(self, years: _Optional[int] = ..., occasion: _Optional[str] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("name", "url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class CreateMeetingRequest(_message.Message):
    __slots__ = ("meeting", "request_id", "duplicates")
    MEETING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    request_id: str
    duplicates: DuplicatePolicy
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ..., request_id: _Optional[str] = ..., duplicates: _Optional[_Union[DuplicatePolicy, str]] = ...) -> None: ...

class CreateMeetingResponse(_message.Message):
    __slots__ = ("meeting", "merged_into")
    MEETING_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    merged_into: str
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ..., merged_into: _Optional[str] = ...) -> None: ...

class GetMeetingRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetMeetingResponse(_message.Message):
    __slots__ = ("meeting",)
    MEETING_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ...) -> None: ...

class StreamMeetingsByCountryPairRequest(_message.Message):
    __slots__ = ("country_a", "country_b", "from_date", "to_date", "start_after_id", "newest_first", "organization_a", "organization_b")
    COUNTRY_A_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_B_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_A_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_B_FIELD_NUMBER: _ClassVar[int]
    country_a: str
    country_b: str
    from_date: str
    to_date: str
    start_after_id: str
    newest_first: bool
    organization_a: str
    organization_b: str
    def __init__(self, country_a: _Optional[str] = ..., country_b: _Optional[str] = ..., from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., start_after_id: _Optional[str] = ..., newest_first: _Optional[bool] = ..., organization_a: _Optional[str] = ..., organization_b: _Optional[str] = ...) -> None: ...

class StreamMeetingsByCountryPairResponse(_message.Message):
    __slots__ = ("meeting",)
    MEETING_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ...) -> None: ...

class ImportMeetingsRequest(_message.Message):
    __slots__ = ("meeting", "request_id", "duplicates")
    MEETING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    request_id: str
    duplicates: DuplicatePolicy
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ..., request_id: _Optional[str] = ..., duplicates: _Optional[_Union[DuplicatePolicy, str]] = ...) -> None: ...

class ImportMeetingsResponse(_message.Message):
    __slots__ = ("created_count", "duplicate_count", "rejected_count", "rejected", "merged_count")
    CREATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    MERGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    created_count: int
    duplicate_count: int
    rejected_count: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedMeeting]
    merged_count: int
    def __init__(self, created_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedMeeting, _Mapping]]] = ..., merged_count: _Optional[int] = ...) -> None: ...

class RejectedMeeting(_message.Message):
    __slots__ = ("index", "request_id", "violations")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    index: int
    request_id: str
    violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, index: _Optional[int] = ..., request_id: _Optional[str] = ..., violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListMeetingsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "country_code", "from_date", "to_date", "topic", "query", "organization_code", "participant")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    country_code: str
    from_date: str
    to_date: str
    topic: str
    query: str
    organization_code: str
    participant: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., country_code: _Optional[str] = ..., from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., topic: _Optional[str] = ..., query: _Optional[str] = ..., organization_code: _Optional[str] = ..., participant: _Optional[str] = ...) -> None: ...

class ListMeetingsResponse(_message.Message):
    __slots__ = ("meetings", "next_page_token")
    MEETINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    meetings: _containers.RepeatedCompositeFieldContainer[Meeting]
    next_page_token: str
    def __init__(self, meetings: _Optional[_Iterable[_Union[Meeting, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateMeetingRequest(_message.Message):
    __slots__ = ("meeting", "update_mask")
    MEETING_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateMeetingResponse(_message.Message):
    __slots__ = ("meeting",)
    MEETING_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ...) -> None: ...

class DeleteMeetingRequest(_message.Message):
    __slots__ = ("id", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    etag: str
    def __init__(self, id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteMeetingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchMeetingsRequest(_message.Message):
    __slots__ = ("country_a", "country_b", "after_sequence", "organization_a", "organization_b")
    COUNTRY_A_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_B_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_A_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_B_FIELD_NUMBER: _ClassVar[int]
    country_a: str
    country_b: str
    after_sequence: int
    organization_a: str
    organization_b: str
    def __init__(self, country_a: _Optional[str] = ..., country_b: _Optional[str] = ..., after_sequence: _Optional[int] = ..., organization_a: _Optional[str] = ..., organization_b: _Optional[str] = ...) -> None: ...

class WatchMeetingsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: MeetingEvent
    def __init__(self, event: _Optional[_Union[MeetingEvent, _Mapping]] = ...) -> None: ...

class MeetingEvent(_message.Message):
    __slots__ = ("sequence", "kind", "meeting", "event_time", "merged_into")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEETING_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    kind: MeetingEventKind
    meeting: Meeting
    event_time: _timestamp_pb2.Timestamp
    merged_into: str
    def __init__(self, sequence: _Optional[int] = ..., kind: _Optional[_Union[MeetingEventKind, str]] = ..., meeting: _Optional[_Union[Meeting, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., merged_into: _Optional[str] = ...) -> None: ...

class GetCountryPairSummaryRequest(_message.Message):
    __slots__ = ("country_a", "country_b", "top_topics", "organization_a", "organization_b")
    COUNTRY_A_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_B_FIELD_NUMBER: _ClassVar[int]
    TOP_TOPICS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_A_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_B_FIELD_NUMBER: _ClassVar[int]
    country_a: str
    country_b: str
    top_topics: int
    organization_a: str
    organization_b: str
    def __init__(self, country_a: _Optional[str] = ..., country_b: _Optional[str] = ..., top_topics: _Optional[int] = ..., organization_a: _Optional[str] = ..., organization_b: _Optional[str] = ...) -> None: ...

class GetCountryPairSummaryResponse(_message.Message):
    __slots__ = ("country_a", "country_b", "meeting_count", "first_meeting_date", "last_meeting_date", "top_topics", "anniversaries", "meetings_by_year", "meetings_by_format", "organization_a", "organization_b")
    COUNTRY_A_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_B_FIELD_NUMBER: _ClassVar[int]
    MEETING_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_MEETING_DATE_FIELD_NUMBER: _ClassVar[int]
    LAST_MEETING_DATE_FIELD_NUMBER: _ClassVar[int]
    TOP_TOPICS_FIELD_NUMBER: _ClassVar[int]
    ANNIVERSARIES_FIELD_NUMBER: _ClassVar[int]
    MEETINGS_BY_YEAR_FIELD_NUMBER: _ClassVar[int]
    MEETINGS_BY_FORMAT_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_A_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_B_FIELD_NUMBER: _ClassVar[int]
    country_a: str
    country_b: str
    meeting_count: int
    first_meeting_date: str
    last_meeting_date: str
    top_topics: _containers.RepeatedCompositeFieldContainer[TopicCount]
    anniversaries: _containers.RepeatedCompositeFieldContainer[AnniversaryInference]
    meetings_by_year: _containers.RepeatedCompositeFieldContainer[YearCount]
    meetings_by_format: _containers.RepeatedCompositeFieldContainer[FormatCount]
    organization_a: str
    organization_b: str
    def __init__(self, country_a: _Optional[str] = ..., country_b: _Optional[str] = ..., meeting_count: _Optional[int] = ..., first_meeting_date: _Optional[str] = ..., last_meeting_date: _Optional[str] = ..., top_topics: _Optional[_Iterable[_Union[TopicCount, _Mapping]]] = ..., anniversaries: _Optional[_Iterable[_Union[AnniversaryInference, _Mapping]]] = ..., meetings_by_year: _Optional[_Iterable[_Union[YearCount, _Mapping]]] = ..., meetings_by_format: _Optional[_Iterable[_Union[FormatCount, _Mapping]]] = ..., organization_a: _Optional[str] = ..., organization_b: _Optional[str] = ...) -> None: ...

class YearCount(_message.Message):
    __slots__ = ("year", "meeting_count")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MEETING_COUNT_FIELD_NUMBER: _ClassVar[int]
    year: int
    meeting_count: int
    def __init__(self, year: _Optional[int] = ..., meeting_count: _Optional[int] = ...) -> None: ...

class FormatCount(_message.Message):
    __slots__ = ("format", "meeting_count")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MEETING_COUNT_FIELD_NUMBER: _ClassVar[int]
    format: MeetingFormat
    meeting_count: int
    def __init__(self, format: _Optional[_Union[MeetingFormat, str]] = ..., meeting_count: _Optional[int] = ...) -> None: ...

class TopicCount(_message.Message):
    __slots__ = ("topic", "meeting_count")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MEETING_COUNT_FIELD_NUMBER: _ClassVar[int]
    topic: str
    meeting_count: int
    def __init__(self, topic: _Optional[str] = ..., meeting_count: _Optional[int] = ...) -> None: ...

class AnniversaryInference(_message.Message):
    __slots__ = ("occasion", "since_year", "meeting_count", "meeting_id")
    OCCASION_FIELD_NUMBER: _ClassVar[int]
    SINCE_YEAR_FIELD_NUMBER: _ClassVar[int]
    MEETING_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEETING_ID_FIELD_NUMBER: _ClassVar[int]
    occasion: str
    since_year: int
    meeting_count: int
    meeting_id: str
    def __init__(self, occasion: _Optional[str] = ..., since_year: _Optional[int] = ..., meeting_count: _Optional[int] = ..., meeting_id: _Optional[str] = ...) -> None: ...

class FindDuplicateMeetingsRequest(_message.Message):
    __slots__ = ("meeting",)
    MEETING_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ...) -> None: ...

class FindDuplicateMeetingsResponse(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[DuplicateMatch]
    def __init__(self, matches: _Optional[_Iterable[_Union[DuplicateMatch, _Mapping]]] = ...) -> None: ...

class DuplicateMatch(_message.Message):
    __slots__ = ("meeting", "names")
    MEETING_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    names: _containers.RepeatedCompositeFieldContainer[NameMatch]
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ..., names: _Optional[_Iterable[_Union[NameMatch, _Mapping]]] = ...) -> None: ...

class NameMatch(_message.Message):
    __slots__ = ("country_code", "organization_code", "name", "matched_name")
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATCHED_NAME_FIELD_NUMBER: _ClassVar[int]
    country_code: str
    organization_code: str
    name: str
    matched_name: str
    def __init__(self, country_code: _Optional[str] = ..., organization_code: _Optional[str] = ..., name: _Optional[str] = ..., matched_name: _Optional[str] = ...) -> None: ...

class MergeMeetingsRequest(_message.Message):
    __slots__ = ("target_id", "source_ids")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    target_id: str
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target_id: _Optional[str] = ..., source_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MergeMeetingsResponse(_message.Message):
    __slots__ = ("meeting",)
    MEETING_FIELD_NUMBER: _ClassVar[int]
    meeting: Meeting
    def __init__(self, meeting: _Optional[_Union[Meeting, _Mapping]] = ...) -> None: ...

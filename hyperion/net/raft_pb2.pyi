from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    NORMAL: _ClassVar[EntryKind]
    NOOP: _ClassVar[EntryKind]
    CONFIG: _ClassVar[EntryKind]

class StoreOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORE_OP_UNSPECIFIED: _ClassVar[StoreOp]
    GET: _ClassVar[StoreOp]
    PUT: _ClassVar[StoreOp]
    DELETE: _ClassVar[StoreOp]

class StoreCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORE_CODE_UNSPECIFIED: _ClassVar[StoreCode]
    OK: _ClassVar[StoreCode]
    NOT_FOUND: _ClassVar[StoreCode]
    CONFLICT: _ClassVar[StoreCode]
    NOT_LEADER: _ClassVar[StoreCode]
    UNAVAILABLE: _ClassVar[StoreCode]
ENTRY_KIND_UNSPECIFIED: EntryKind
NORMAL: EntryKind
NOOP: EntryKind
CONFIG: EntryKind
STORE_OP_UNSPECIFIED: StoreOp
GET: StoreOp
PUT: StoreOp
DELETE: StoreOp
STORE_CODE_UNSPECIFIED: StoreCode
OK: StoreCode
NOT_FOUND: StoreCode
CONFLICT: StoreCode
NOT_LEADER: StoreCode
UNAVAILABLE: StoreCode

class Entry(_message.Message):
    __slots__ = ("index", "term", "kind", "data", "voters", "learners")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    index: int
    term: int
    kind: EntryKind
    data: bytes
    voters: _containers.RepeatedScalarFieldContainer[str]
    learners: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index: _Optional[int] = ..., term: _Optional[int] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., data: _Optional[bytes] = ..., voters: _Optional[_Iterable[str]] = ..., learners: _Optional[_Iterable[str]] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("index", "term", "voters", "learners", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    term: int
    voters: _containers.RepeatedScalarFieldContainer[str]
    learners: _containers.RepeatedScalarFieldContainer[str]
    data: bytes
    def __init__(self, index: _Optional[int] = ..., term: _Optional[int] = ..., voters: _Optional[_Iterable[str]] = ..., learners: _Optional[_Iterable[str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class VoteRequest(_message.Message):
    __slots__ = ("last_index", "last_term", "pre_vote")
    LAST_INDEX_FIELD_NUMBER: _ClassVar[int]
    LAST_TERM_FIELD_NUMBER: _ClassVar[int]
    PRE_VOTE_FIELD_NUMBER: _ClassVar[int]
    last_index: int
    last_term: int
    pre_vote: bool
    def __init__(self, last_index: _Optional[int] = ..., last_term: _Optional[int] = ..., pre_vote: _Optional[bool] = ...) -> None: ...

class VoteResponse(_message.Message):
    __slots__ = ("granted", "pre_vote")
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    PRE_VOTE_FIELD_NUMBER: _ClassVar[int]
    granted: bool
    pre_vote: bool
    def __init__(self, granted: _Optional[bool] = ..., pre_vote: _Optional[bool] = ...) -> None: ...

class AppendEntries(_message.Message):
    __slots__ = ("prev_index", "prev_term", "entries", "commit")
    PREV_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREV_TERM_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    prev_index: int
    prev_term: int
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    commit: int
    def __init__(self, prev_index: _Optional[int] = ..., prev_term: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., commit: _Optional[int] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("success", "index", "hint_index", "hint_term")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HINT_INDEX_FIELD_NUMBER: _ClassVar[int]
    HINT_TERM_FIELD_NUMBER: _ClassVar[int]
    success: bool
    index: int
    hint_index: int
    hint_term: int
    def __init__(self, success: _Optional[bool] = ..., index: _Optional[int] = ..., hint_index: _Optional[int] = ..., hint_term: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("commit", "ctx")
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    CTX_FIELD_NUMBER: _ClassVar[int]
    commit: int
    ctx: int
    def __init__(self, commit: _Optional[int] = ..., ctx: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("ctx",)
    CTX_FIELD_NUMBER: _ClassVar[int]
    ctx: int
    def __init__(self, ctx: _Optional[int] = ...) -> None: ...

class InstallSnapshot(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

class StoreRequest(_message.Message):
    __slots__ = ("id", "op", "key", "value", "has_expect", "expect_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXPECT_FIELD_NUMBER: _ClassVar[int]
    EXPECT_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: int
    op: StoreOp
    key: str
    value: bytes
    has_expect: bool
    expect_version: int
    def __init__(self, id: _Optional[int] = ..., op: _Optional[_Union[StoreOp, str]] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ..., has_expect: _Optional[bool] = ..., expect_version: _Optional[int] = ...) -> None: ...

class StoreReply(_message.Message):
    __slots__ = ("id", "code", "version", "value", "leader", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    code: StoreCode
    version: int
    value: bytes
    leader: str
    message: str
    def __init__(self, id: _Optional[int] = ..., code: _Optional[_Union[StoreCode, str]] = ..., version: _Optional[int] = ..., value: _Optional[bytes] = ..., leader: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RaftMessage(_message.Message):
    __slots__ = ("group", "src", "term", "vote_request", "vote_response", "append_entries", "append_response", "heartbeat", "heartbeat_response", "install_snapshot", "store_request", "store_reply")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    VOTE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    VOTE_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    APPEND_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    APPEND_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    INSTALL_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    STORE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    STORE_REPLY_FIELD_NUMBER: _ClassVar[int]
    group: str
    src: str
    term: int
    vote_request: VoteRequest
    vote_response: VoteResponse
    append_entries: AppendEntries
    append_response: AppendResponse
    heartbeat: Heartbeat
    heartbeat_response: HeartbeatResponse
    install_snapshot: InstallSnapshot
    store_request: StoreRequest
    store_reply: StoreReply
    def __init__(self, group: _Optional[str] = ..., src: _Optional[str] = ..., term: _Optional[int] = ..., vote_request: _Optional[_Union[VoteRequest, _Mapping]] = ..., vote_response: _Optional[_Union[VoteResponse, _Mapping]] = ..., append_entries: _Optional[_Union[AppendEntries, _Mapping]] = ..., append_response: _Optional[_Union[AppendResponse, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., heartbeat_response: _Optional[_Union[HeartbeatResponse, _Mapping]] = ..., install_snapshot: _Optional[_Union[InstallSnapshot, _Mapping]] = ..., store_request: _Optional[_Union[StoreRequest, _Mapping]] = ..., store_reply: _Optional[_Union[StoreReply, _Mapping]] = ...) -> None: ...

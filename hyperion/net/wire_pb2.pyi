from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MemberState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEMBER_STATE_UNSPECIFIED: _ClassVar[MemberState]
    ALIVE: _ClassVar[MemberState]
    SUSPECT: _ClassVar[MemberState]
    DEAD: _ClassVar[MemberState]
MEMBER_STATE_UNSPECIFIED: MemberState
ALIVE: MemberState
SUSPECT: MemberState
DEAD: MemberState

class Envelope(_message.Message):
    __slots__ = ("protocol_version", "sender", "sender_key", "timestamp_ms", "nonce", "body", "signature")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SENDER_KEY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    sender: bytes
    sender_key: bytes
    timestamp_ms: int
    nonce: bytes
    body: bytes
    signature: bytes
    def __init__(self, protocol_version: _Optional[int] = ..., sender: _Optional[bytes] = ..., sender_key: _Optional[bytes] = ..., timestamp_ms: _Optional[int] = ..., nonce: _Optional[bytes] = ..., body: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class MeshMessage(_message.Message):
    __slots__ = ("ping", "ack", "ping_req", "gossip", "push_pull", "broadcast", "dht_find_node", "dht_find_value", "dht_nodes", "dht_store", "dht_store_ack", "pubsub", "catalog_digest", "catalog_delta", "sched_tender", "sched_bid", "sched_award", "sched_award_reply", "sched_release", "raft")
    PING_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    PING_REQ_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_FIELD_NUMBER: _ClassVar[int]
    PUSH_PULL_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    DHT_FIND_NODE_FIELD_NUMBER: _ClassVar[int]
    DHT_FIND_VALUE_FIELD_NUMBER: _ClassVar[int]
    DHT_NODES_FIELD_NUMBER: _ClassVar[int]
    DHT_STORE_FIELD_NUMBER: _ClassVar[int]
    DHT_STORE_ACK_FIELD_NUMBER: _ClassVar[int]
    PUBSUB_FIELD_NUMBER: _ClassVar[int]
    CATALOG_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CATALOG_DELTA_FIELD_NUMBER: _ClassVar[int]
    SCHED_TENDER_FIELD_NUMBER: _ClassVar[int]
    SCHED_BID_FIELD_NUMBER: _ClassVar[int]
    SCHED_AWARD_FIELD_NUMBER: _ClassVar[int]
    SCHED_AWARD_REPLY_FIELD_NUMBER: _ClassVar[int]
    SCHED_RELEASE_FIELD_NUMBER: _ClassVar[int]
    RAFT_FIELD_NUMBER: _ClassVar[int]
    ping: Ping
    ack: Ack
    ping_req: PingReq
    gossip: Gossip
    push_pull: PushPull
    broadcast: Broadcast
    dht_find_node: DhtFindNode
    dht_find_value: DhtFindValue
    dht_nodes: DhtNodes
    dht_store: DhtStore
    dht_store_ack: DhtStoreAck
    pubsub: PubSub
    catalog_digest: CatalogDigest
    catalog_delta: CatalogDelta
    sched_tender: SchedTender
    sched_bid: SchedBid
    sched_award: SchedAward
    sched_award_reply: SchedAwardReply
    sched_release: SchedRelease
    raft: bytes
    def __init__(self, ping: _Optional[_Union[Ping, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., ping_req: _Optional[_Union[PingReq, _Mapping]] = ..., gossip: _Optional[_Union[Gossip, _Mapping]] = ..., push_pull: _Optional[_Union[PushPull, _Mapping]] = ..., broadcast: _Optional[_Union[Broadcast, _Mapping]] = ..., dht_find_node: _Optional[_Union[DhtFindNode, _Mapping]] = ..., dht_find_value: _Optional[_Union[DhtFindValue, _Mapping]] = ..., dht_nodes: _Optional[_Union[DhtNodes, _Mapping]] = ..., dht_store: _Optional[_Union[DhtStore, _Mapping]] = ..., dht_store_ack: _Optional[_Union[DhtStoreAck, _Mapping]] = ..., pubsub: _Optional[_Union[PubSub, _Mapping]] = ..., catalog_digest: _Optional[_Union[CatalogDigest, _Mapping]] = ..., catalog_delta: _Optional[_Union[CatalogDelta, _Mapping]] = ..., sched_tender: _Optional[_Union[SchedTender, _Mapping]] = ..., sched_bid: _Optional[_Union[SchedBid, _Mapping]] = ..., sched_award: _Optional[_Union[SchedAward, _Mapping]] = ..., sched_award_reply: _Optional[_Union[SchedAwardReply, _Mapping]] = ..., sched_release: _Optional[_Union[SchedRelease, _Mapping]] = ..., raft: _Optional[bytes] = ...) -> None: ...

class Update(_message.Message):
    __slots__ = ("node_id", "addr", "incarnation", "state", "name")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    addr: str
    incarnation: int
    state: MemberState
    name: str
    def __init__(self, node_id: _Optional[bytes] = ..., addr: _Optional[str] = ..., incarnation: _Optional[int] = ..., state: _Optional[_Union[MemberState, str]] = ..., name: _Optional[str] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("src", "src_addr", "seq", "target", "updates")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    seq: int
    target: bytes
    updates: _containers.RepeatedCompositeFieldContainer[Update]
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., seq: _Optional[int] = ..., target: _Optional[bytes] = ..., updates: _Optional[_Iterable[_Union[Update, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("src", "seq", "updates")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    seq: int
    updates: _containers.RepeatedCompositeFieldContainer[Update]
    def __init__(self, src: _Optional[bytes] = ..., seq: _Optional[int] = ..., updates: _Optional[_Iterable[_Union[Update, _Mapping]]] = ...) -> None: ...

class PingReq(_message.Message):
    __slots__ = ("src", "src_addr", "seq", "target", "target_addr", "updates")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_ADDR_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    seq: int
    target: bytes
    target_addr: str
    updates: _containers.RepeatedCompositeFieldContainer[Update]
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., seq: _Optional[int] = ..., target: _Optional[bytes] = ..., target_addr: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[Update, _Mapping]]] = ...) -> None: ...

class Gossip(_message.Message):
    __slots__ = ("src", "updates")
    SRC_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    updates: _containers.RepeatedCompositeFieldContainer[Update]
    def __init__(self, src: _Optional[bytes] = ..., updates: _Optional[_Iterable[_Union[Update, _Mapping]]] = ...) -> None: ...

class Broadcast(_message.Message):
    __slots__ = ("src", "lo", "hi", "updates", "rank")
    SRC_FIELD_NUMBER: _ClassVar[int]
    LO_FIELD_NUMBER: _ClassVar[int]
    HI_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    lo: bytes
    hi: bytes
    updates: _containers.RepeatedCompositeFieldContainer[Update]
    rank: int
    def __init__(self, src: _Optional[bytes] = ..., lo: _Optional[bytes] = ..., hi: _Optional[bytes] = ..., updates: _Optional[_Iterable[_Union[Update, _Mapping]]] = ..., rank: _Optional[int] = ...) -> None: ...

class PushPull(_message.Message):
    __slots__ = ("src", "src_addr", "reply", "join", "ids", "addrs", "names", "keys")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    JOIN_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ADDRS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    reply: bool
    join: bool
    ids: _containers.RepeatedScalarFieldContainer[bytes]
    addrs: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    keys: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., reply: _Optional[bool] = ..., join: _Optional[bool] = ..., ids: _Optional[_Iterable[bytes]] = ..., addrs: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., keys: _Optional[_Iterable[int]] = ...) -> None: ...

class DhtContact(_message.Message):
    __slots__ = ("node_id", "addr")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    addr: str
    def __init__(self, node_id: _Optional[bytes] = ..., addr: _Optional[str] = ...) -> None: ...

class DhtRecord(_message.Message):
    __slots__ = ("key", "value", "author", "author_key", "version", "expires_at", "signature")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    author: bytes
    author_key: bytes
    version: int
    expires_at: float
    signature: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., author: _Optional[bytes] = ..., author_key: _Optional[bytes] = ..., version: _Optional[int] = ..., expires_at: _Optional[float] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DhtFindNode(_message.Message):
    __slots__ = ("src", "src_addr", "rid", "target")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    RID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    rid: int
    target: bytes
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., rid: _Optional[int] = ..., target: _Optional[bytes] = ...) -> None: ...

class DhtFindValue(_message.Message):
    __slots__ = ("src", "src_addr", "rid", "key")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    RID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    rid: int
    key: bytes
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., rid: _Optional[int] = ..., key: _Optional[bytes] = ...) -> None: ...

class DhtNodes(_message.Message):
    __slots__ = ("src", "rid", "contacts", "record")
    SRC_FIELD_NUMBER: _ClassVar[int]
    RID_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    rid: int
    contacts: _containers.RepeatedCompositeFieldContainer[DhtContact]
    record: DhtRecord
    def __init__(self, src: _Optional[bytes] = ..., rid: _Optional[int] = ..., contacts: _Optional[_Iterable[_Union[DhtContact, _Mapping]]] = ..., record: _Optional[_Union[DhtRecord, _Mapping]] = ...) -> None: ...

class DhtStore(_message.Message):
    __slots__ = ("src", "src_addr", "rid", "record")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    RID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    rid: int
    record: DhtRecord
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., rid: _Optional[int] = ..., record: _Optional[_Union[DhtRecord, _Mapping]] = ...) -> None: ...

class DhtStoreAck(_message.Message):
    __slots__ = ("src", "rid", "accepted", "reason")
    SRC_FIELD_NUMBER: _ClassVar[int]
    RID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    rid: int
    accepted: bool
    reason: str
    def __init__(self, src: _Optional[bytes] = ..., rid: _Optional[int] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class PsMessage(_message.Message):
    __slots__ = ("origin", "origin_key", "seqno", "topic", "data", "signature")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_KEY_FIELD_NUMBER: _ClassVar[int]
    SEQNO_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    origin: bytes
    origin_key: bytes
    seqno: int
    topic: str
    data: bytes
    signature: bytes
    def __init__(self, origin: _Optional[bytes] = ..., origin_key: _Optional[bytes] = ..., seqno: _Optional[int] = ..., topic: _Optional[str] = ..., data: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PsIHave(_message.Message):
    __slots__ = ("topic", "ids")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, topic: _Optional[str] = ..., ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PubSub(_message.Message):
    __slots__ = ("src", "subscribe", "unsubscribe", "publish", "ihave", "iwant", "graft", "prune", "idontwant", "src_addr", "choke", "unchoke")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    IHAVE_FIELD_NUMBER: _ClassVar[int]
    IWANT_FIELD_NUMBER: _ClassVar[int]
    GRAFT_FIELD_NUMBER: _ClassVar[int]
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    IDONTWANT_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    CHOKE_FIELD_NUMBER: _ClassVar[int]
    UNCHOKE_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    subscribe: _containers.RepeatedScalarFieldContainer[str]
    unsubscribe: _containers.RepeatedScalarFieldContainer[str]
    publish: _containers.RepeatedCompositeFieldContainer[PsMessage]
    ihave: _containers.RepeatedCompositeFieldContainer[PsIHave]
    iwant: _containers.RepeatedScalarFieldContainer[bytes]
    graft: _containers.RepeatedScalarFieldContainer[str]
    prune: _containers.RepeatedScalarFieldContainer[str]
    idontwant: _containers.RepeatedScalarFieldContainer[bytes]
    src_addr: str
    choke: _containers.RepeatedScalarFieldContainer[str]
    unchoke: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, src: _Optional[bytes] = ..., subscribe: _Optional[_Iterable[str]] = ..., unsubscribe: _Optional[_Iterable[str]] = ..., publish: _Optional[_Iterable[_Union[PsMessage, _Mapping]]] = ..., ihave: _Optional[_Iterable[_Union[PsIHave, _Mapping]]] = ..., iwant: _Optional[_Iterable[bytes]] = ..., graft: _Optional[_Iterable[str]] = ..., prune: _Optional[_Iterable[str]] = ..., idontwant: _Optional[_Iterable[bytes]] = ..., src_addr: _Optional[str] = ..., choke: _Optional[_Iterable[str]] = ..., unchoke: _Optional[_Iterable[str]] = ...) -> None: ...

class CatalogItem(_message.Message):
    __slots__ = ("resource", "namespace", "name", "wall_ms", "logical", "node", "object", "deleted")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WALL_MS_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    wall_ms: int
    logical: int
    node: bytes
    object: bytes
    deleted: bool
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., wall_ms: _Optional[int] = ..., logical: _Optional[int] = ..., node: _Optional[bytes] = ..., object: _Optional[bytes] = ..., deleted: _Optional[bool] = ...) -> None: ...

class CatalogStamp(_message.Message):
    __slots__ = ("resource", "namespace", "name", "wall_ms", "logical", "node")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WALL_MS_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    wall_ms: int
    logical: int
    node: bytes
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., wall_ms: _Optional[int] = ..., logical: _Optional[int] = ..., node: _Optional[bytes] = ...) -> None: ...

class CatalogDigest(_message.Message):
    __slots__ = ("src", "src_addr", "buckets")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    buckets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., buckets: _Optional[_Iterable[int]] = ...) -> None: ...

class CatalogDelta(_message.Message):
    __slots__ = ("src", "src_addr", "reply", "items", "buckets", "summary")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_ADDR_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    src_addr: str
    reply: bool
    items: _containers.RepeatedCompositeFieldContainer[CatalogItem]
    buckets: _containers.RepeatedScalarFieldContainer[int]
    summary: _containers.RepeatedCompositeFieldContainer[CatalogStamp]
    def __init__(self, src: _Optional[bytes] = ..., src_addr: _Optional[str] = ..., reply: _Optional[bool] = ..., items: _Optional[_Iterable[_Union[CatalogItem, _Mapping]]] = ..., buckets: _Optional[_Iterable[int]] = ..., summary: _Optional[_Iterable[_Union[CatalogStamp, _Mapping]]] = ...) -> None: ...

class SchedMatchExpression(_message.Message):
    __slots__ = ("key", "operator", "values")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    key: str
    operator: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., operator: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class SchedAffinityTerm(_message.Message):
    __slots__ = ("expressions",)
    EXPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    expressions: _containers.RepeatedCompositeFieldContainer[SchedMatchExpression]
    def __init__(self, expressions: _Optional[_Iterable[_Union[SchedMatchExpression, _Mapping]]] = ...) -> None: ...

class SchedUser(_message.Message):
    __slots__ = ("geography", "weight")
    GEOGRAPHY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    geography: str
    weight: float
    def __init__(self, geography: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class SchedRequest(_message.Message):
    __slots__ = ("workload_id", "replica", "replicas", "kind", "cpu_millis", "memory_bytes", "gpus", "gpu_model", "geographies", "clouds", "node_selector", "affinity", "version_range", "prefer_spot", "data_locality", "goal", "users", "placed_rtt_ms", "placed_capacity")
    class NodeSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class PlacedRttMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class PlacedCapacityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WORKLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    GEOGRAPHIES_FIELD_NUMBER: _ClassVar[int]
    CLOUDS_FIELD_NUMBER: _ClassVar[int]
    NODE_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    AFFINITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_RANGE_FIELD_NUMBER: _ClassVar[int]
    PREFER_SPOT_FIELD_NUMBER: _ClassVar[int]
    DATA_LOCALITY_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    PLACED_RTT_MS_FIELD_NUMBER: _ClassVar[int]
    PLACED_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    workload_id: str
    replica: int
    replicas: int
    kind: str
    cpu_millis: int
    memory_bytes: int
    gpus: int
    gpu_model: str
    geographies: _containers.RepeatedScalarFieldContainer[str]
    clouds: _containers.RepeatedScalarFieldContainer[str]
    node_selector: _containers.ScalarMap[str, str]
    affinity: _containers.RepeatedCompositeFieldContainer[SchedAffinityTerm]
    version_range: str
    prefer_spot: bool
    data_locality: str
    goal: str
    users: _containers.RepeatedCompositeFieldContainer[SchedUser]
    placed_rtt_ms: _containers.ScalarMap[str, float]
    placed_capacity: _containers.ScalarMap[str, float]
    def __init__(self, workload_id: _Optional[str] = ..., replica: _Optional[int] = ..., replicas: _Optional[int] = ..., kind: _Optional[str] = ..., cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpus: _Optional[int] = ..., gpu_model: _Optional[str] = ..., geographies: _Optional[_Iterable[str]] = ..., clouds: _Optional[_Iterable[str]] = ..., node_selector: _Optional[_Mapping[str, str]] = ..., affinity: _Optional[_Iterable[_Union[SchedAffinityTerm, _Mapping]]] = ..., version_range: _Optional[str] = ..., prefer_spot: _Optional[bool] = ..., data_locality: _Optional[str] = ..., goal: _Optional[str] = ..., users: _Optional[_Iterable[_Union[SchedUser, _Mapping]]] = ..., placed_rtt_ms: _Optional[_Mapping[str, float]] = ..., placed_capacity: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SchedCandidate(_message.Message):
    __slots__ = ("node_id", "cloud", "region", "zone", "geography", "price_per_hour", "spot", "interruption_band", "rtt_ms", "cpu_millis", "cpu_millis_free", "memory_bytes", "memory_bytes_free", "gpus", "gpus_free", "gpu_model", "load", "reliability", "software_version", "protocol_versions", "labels", "edge", "speed", "replicas_on_node", "replicas_in_zone", "replicas_in_region")
    class RttMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    GEOGRAPHY_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    SPOT_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTION_BAND_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FREE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FREE_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EDGE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_ON_NODE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_IN_ZONE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_IN_REGION_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    cloud: str
    region: str
    zone: str
    geography: str
    price_per_hour: float
    spot: bool
    interruption_band: int
    rtt_ms: _containers.ScalarMap[str, float]
    cpu_millis: int
    cpu_millis_free: int
    memory_bytes: int
    memory_bytes_free: int
    gpus: int
    gpus_free: int
    gpu_model: str
    load: float
    reliability: float
    software_version: str
    protocol_versions: _containers.RepeatedScalarFieldContainer[int]
    labels: _containers.ScalarMap[str, str]
    edge: bool
    speed: float
    replicas_on_node: int
    replicas_in_zone: int
    replicas_in_region: int
    def __init__(self, node_id: _Optional[bytes] = ..., cloud: _Optional[str] = ..., region: _Optional[str] = ..., zone: _Optional[str] = ..., geography: _Optional[str] = ..., price_per_hour: _Optional[float] = ..., spot: _Optional[bool] = ..., interruption_band: _Optional[int] = ..., rtt_ms: _Optional[_Mapping[str, float]] = ..., cpu_millis: _Optional[int] = ..., cpu_millis_free: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., memory_bytes_free: _Optional[int] = ..., gpus: _Optional[int] = ..., gpus_free: _Optional[int] = ..., gpu_model: _Optional[str] = ..., load: _Optional[float] = ..., reliability: _Optional[float] = ..., software_version: _Optional[str] = ..., protocol_versions: _Optional[_Iterable[int]] = ..., labels: _Optional[_Mapping[str, str]] = ..., edge: _Optional[bool] = ..., speed: _Optional[float] = ..., replicas_on_node: _Optional[int] = ..., replicas_in_zone: _Optional[int] = ..., replicas_in_region: _Optional[int] = ...) -> None: ...

class SchedTender(_message.Message):
    __slots__ = ("src", "tender_id", "pod", "request", "deadline")
    SRC_FIELD_NUMBER: _ClassVar[int]
    TENDER_ID_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    tender_id: str
    pod: str
    request: SchedRequest
    deadline: float
    def __init__(self, src: _Optional[bytes] = ..., tender_id: _Optional[str] = ..., pod: _Optional[str] = ..., request: _Optional[_Union[SchedRequest, _Mapping]] = ..., deadline: _Optional[float] = ...) -> None: ...

class SchedBid(_message.Message):
    __slots__ = ("src", "tender_id", "candidate", "reason", "resolvable")
    SRC_FIELD_NUMBER: _ClassVar[int]
    TENDER_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLVABLE_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    tender_id: str
    candidate: SchedCandidate
    reason: str
    resolvable: bool
    def __init__(self, src: _Optional[bytes] = ..., tender_id: _Optional[str] = ..., candidate: _Optional[_Union[SchedCandidate, _Mapping]] = ..., reason: _Optional[str] = ..., resolvable: _Optional[bool] = ...) -> None: ...

class SchedAward(_message.Message):
    __slots__ = ("src", "tender_id", "pod", "request")
    SRC_FIELD_NUMBER: _ClassVar[int]
    TENDER_ID_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    tender_id: str
    pod: str
    request: SchedRequest
    def __init__(self, src: _Optional[bytes] = ..., tender_id: _Optional[str] = ..., pod: _Optional[str] = ..., request: _Optional[_Union[SchedRequest, _Mapping]] = ...) -> None: ...

class SchedAwardReply(_message.Message):
    __slots__ = ("src", "tender_id", "pod", "accepted", "reason")
    SRC_FIELD_NUMBER: _ClassVar[int]
    TENDER_ID_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    tender_id: str
    pod: str
    accepted: bool
    reason: str
    def __init__(self, src: _Optional[bytes] = ..., tender_id: _Optional[str] = ..., pod: _Optional[str] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SchedRelease(_message.Message):
    __slots__ = ("src", "tender_id", "pod")
    SRC_FIELD_NUMBER: _ClassVar[int]
    TENDER_ID_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    src: bytes
    tender_id: str
    pod: str
    def __init__(self, src: _Optional[bytes] = ..., tender_id: _Optional[str] = ..., pod: _Optional[str] = ...) -> None: ...

class GpuInfo(_message.Message):
    __slots__ = ("model", "memory_bytes", "count", "free")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    model: str
    memory_bytes: int
    count: int
    free: int
    def __init__(self, model: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., count: _Optional[int] = ..., free: _Optional[int] = ...) -> None: ...

class NodeRecord(_message.Message):
    __slots__ = ("node_id", "spiffe_id", "name", "mesh_addr", "api_addr", "labels", "cpu_millis", "memory_bytes", "gpus", "cpu_millis_free", "memory_bytes_free", "price_per_hour", "spot", "software_version", "protocol_versions", "updated_at", "egress_price_per_gb")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SPIFFE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESH_ADDR_FIELD_NUMBER: _ClassVar[int]
    API_ADDR_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLIS_FREE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FREE_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    SPOT_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EGRESS_PRICE_PER_GB_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    spiffe_id: str
    name: str
    mesh_addr: str
    api_addr: str
    labels: _containers.ScalarMap[str, str]
    cpu_millis: int
    memory_bytes: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuInfo]
    cpu_millis_free: int
    memory_bytes_free: int
    price_per_hour: float
    spot: bool
    software_version: str
    protocol_versions: _containers.RepeatedScalarFieldContainer[int]
    updated_at: float
    egress_price_per_gb: float
    def __init__(self, node_id: _Optional[bytes] = ..., spiffe_id: _Optional[str] = ..., name: _Optional[str] = ..., mesh_addr: _Optional[str] = ..., api_addr: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuInfo, _Mapping]]] = ..., cpu_millis_free: _Optional[int] = ..., memory_bytes_free: _Optional[int] = ..., price_per_hour: _Optional[float] = ..., spot: _Optional[bool] = ..., software_version: _Optional[str] = ..., protocol_versions: _Optional[_Iterable[int]] = ..., updated_at: _Optional[float] = ..., egress_price_per_gb: _Optional[float] = ...) -> None: ...

class LeaseValue(_message.Message):
    __slots__ = ("namespace", "pod", "pod_uid", "holder", "workload_key", "renewed_at")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    POD_UID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_KEY_FIELD_NUMBER: _ClassVar[int]
    RENEWED_AT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    pod: str
    pod_uid: str
    holder: bytes
    workload_key: bytes
    renewed_at: float
    def __init__(self, namespace: _Optional[str] = ..., pod: _Optional[str] = ..., pod_uid: _Optional[str] = ..., holder: _Optional[bytes] = ..., workload_key: _Optional[bytes] = ..., renewed_at: _Optional[float] = ...) -> None: ...

class WorkloadPlacement(_message.Message):
    __slots__ = ("pod", "pod_uid", "node_id", "node_name", "ready")
    POD_FIELD_NUMBER: _ClassVar[int]
    POD_UID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    pod: str
    pod_uid: str
    node_id: bytes
    node_name: str
    ready: bool
    def __init__(self, pod: _Optional[str] = ..., pod_uid: _Optional[str] = ..., node_id: _Optional[bytes] = ..., node_name: _Optional[str] = ..., ready: _Optional[bool] = ...) -> None: ...

class WorkloadValue(_message.Message):
    __slots__ = ("resource", "namespace", "name", "uid", "generation", "desired", "ready", "placements")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    uid: str
    generation: int
    desired: int
    ready: int
    placements: _containers.RepeatedCompositeFieldContainer[WorkloadPlacement]
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., uid: _Optional[str] = ..., generation: _Optional[int] = ..., desired: _Optional[int] = ..., ready: _Optional[int] = ..., placements: _Optional[_Iterable[_Union[WorkloadPlacement, _Mapping]]] = ...) -> None: ...

class RecordValue(_message.Message):
    __slots__ = ("lease", "workload")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    lease: LeaseValue
    workload: WorkloadValue
    def __init__(self, lease: _Optional[_Union[LeaseValue, _Mapping]] = ..., workload: _Optional[_Union[WorkloadValue, _Mapping]] = ...) -> None: ...

class StreamSummary(_message.Message):
    __slots__ = ("accepted", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: int
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class MembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberInfo(_message.Message):
    __slots__ = ("node_id", "name", "addr", "state", "incarnation", "state_since_unix")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_UNIX_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    addr: str
    state: str
    incarnation: int
    state_since_unix: float
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., addr: _Optional[str] = ..., state: _Optional[str] = ..., incarnation: _Optional[int] = ..., state_since_unix: _Optional[float] = ...) -> None: ...

class MembersReply(_message.Message):
    __slots__ = ("node_id", "name", "members", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    members: _containers.RepeatedCompositeFieldContainer[MemberInfo]
    counters: _containers.ScalarMap[str, int]
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., members: _Optional[_Iterable[_Union[MemberInfo, _Mapping]]] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class NodesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodesReply(_message.Message):
    __slots__ = ("node_id", "name", "records", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    records: _containers.RepeatedCompositeFieldContainer[NodeRecord]
    counters: _containers.ScalarMap[str, int]
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., records: _Optional[_Iterable[_Union[NodeRecord, _Mapping]]] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...

class LocateRequest(_message.Message):
    __slots__ = ("resource", "namespace", "name")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource: str
    namespace: str
    name: str
    def __init__(self, resource: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class LocatedRecord(_message.Message):
    __slots__ = ("key", "author", "author_name", "version", "expires_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    key: str
    author: str
    author_name: str
    version: int
    expires_at: float
    def __init__(self, key: _Optional[str] = ..., author: _Optional[str] = ..., author_name: _Optional[str] = ..., version: _Optional[int] = ..., expires_at: _Optional[float] = ...) -> None: ...

class LocatedLease(_message.Message):
    __slots__ = ("placement", "found", "record", "lease")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    placement: WorkloadPlacement
    found: bool
    record: LocatedRecord
    lease: LeaseValue
    def __init__(self, placement: _Optional[_Union[WorkloadPlacement, _Mapping]] = ..., found: _Optional[bool] = ..., record: _Optional[_Union[LocatedRecord, _Mapping]] = ..., lease: _Optional[_Union[LeaseValue, _Mapping]] = ...) -> None: ...

class LocateReply(_message.Message):
    __slots__ = ("node_id", "name", "found", "record", "workload", "leases")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    found: bool
    record: LocatedRecord
    workload: WorkloadValue
    leases: _containers.RepeatedCompositeFieldContainer[LocatedLease]
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., found: _Optional[bool] = ..., record: _Optional[_Union[LocatedRecord, _Mapping]] = ..., workload: _Optional[_Union[WorkloadValue, _Mapping]] = ..., leases: _Optional[_Iterable[_Union[LocatedLease, _Mapping]]] = ...) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    def __init__(self, record: _Optional[bytes] = ...) -> None: ...

class RevokeReply(_message.Message):
    __slots__ = ("node_id", "name", "subject", "known")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    subject: str
    known: int
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., subject: _Optional[str] = ..., known: _Optional[int] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("token", "name", "node_key", "csr", "node_key_proof", "ttl_s")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_PROOF_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    token: str
    name: str
    node_key: bytes
    csr: bytes
    node_key_proof: bytes
    ttl_s: float
    def __init__(self, token: _Optional[str] = ..., name: _Optional[str] = ..., node_key: _Optional[bytes] = ..., csr: _Optional[bytes] = ..., node_key_proof: _Optional[bytes] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class EnrollReply(_message.Message):
    __slots__ = ("svid", "bundle", "renew_port")
    SVID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    RENEW_PORT_FIELD_NUMBER: _ClassVar[int]
    svid: bytes
    bundle: bytes
    renew_port: int
    def __init__(self, svid: _Optional[bytes] = ..., bundle: _Optional[bytes] = ..., renew_port: _Optional[int] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("csr", "ttl_s")
    CSR_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    csr: bytes
    ttl_s: float
    def __init__(self, csr: _Optional[bytes] = ..., ttl_s: _Optional[float] = ...) -> None: ...

class RenewReply(_message.Message):
    __slots__ = ("svid", "bundle")
    SVID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    svid: bytes
    bundle: bytes
    def __init__(self, svid: _Optional[bytes] = ..., bundle: _Optional[bytes] = ...) -> None: ...

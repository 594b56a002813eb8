"""Regenerate the protobuf code: hyperion/net/*.proto (the SPIFFE Workload API among them)
and the vendored Kubernetes protos.

Usage:
  python tools/gen_proto.py [OUT_DIR]   (default: the repository root, in place)
  python tools/gen_proto.py --vendor-k8s API_GIT_DIR APIMACHINERY_GIT_DIR [REF]

The first form writes the gRPC Python code of hyperion/net and the descriptor set of the
Kubernetes protos (hyperion/api/k8spb/descriptors.binpb, read by hyperion/api/k8sproto.py);
tests/test_wire_sync.py runs it into a temporary directory and fails if the result differs
from the committed files.

The second form re-vendors the Kubernetes ``generated.proto`` files from git checkouts of
kubernetes/api and kubernetes/apimachinery at REF (default K8S_REF; bare git directories
work) and derives hyperion/api/k8spb/gofields.py from the Go types at the same REF: the
scalar fields that are Go pointers, whose zero value means "set" (replicas: 0) rather
than "absent", and the embedded structs that JSON inlines. Then it regenerates
everything in place.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTOS = [
    "hyperion/net/wire.proto",
    "hyperion/net/compat/wire_v1.proto",
    "hyperion/net/raft.proto",
    "hyperion/net/workload.proto",  # the SPIFFE Workload API (vendored, see NOTICE)
]

K8S_DIR = "hyperion/api/k8spb"  # the protoc import root of the vendored protos
K8S_DESCRIPTORS = f"{K8S_DIR}/descriptors.binpb"
K8S_GO_FIELDS = f"{K8S_DIR}/gofields.py"
K8S_REF = "v0.32.13"  # Kubernetes 1.32.13, the minor the API server presents
# (repository, Go package directory) of each vendored generated.proto.
K8S_PACKAGES = [
    ("api", "core/v1"),
    ("api", "apps/v1"),
    ("api", "batch/v1"),
    ("apimachinery", "pkg/apis/meta/v1"),
    ("apimachinery", "pkg/api/resource"),
    ("apimachinery", "pkg/util/intstr"),
    ("apimachinery", "pkg/runtime"),
    ("apimachinery", "pkg/runtime/schema"),
]
# The roots: everything else is reached through their imports (--include_imports).
K8S_ROOTS = ["k8s.io/api/core/v1", "k8s.io/api/apps/v1", "k8s.io/api/batch/v1"]


def _protoc(args: list[str], what: str) -> None:
    if protoc.main(["protoc", *args]) != 0:
        raise SystemExit(f"protoc failed for {what}")


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for proto in PROTOS:
        _protoc(
            [
                f"-I{ROOT}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                str(ROOT / proto),
            ],
            proto,
        )
    descriptors = out / K8S_DESCRIPTORS
    descriptors.parent.mkdir(parents=True, exist_ok=True)
    _protoc(
        [
            f"-I{ROOT / K8S_DIR}",
            f"--descriptor_set_out={descriptors}",
            "--include_imports",
            *(f"{root}/generated.proto" for root in K8S_ROOTS),
        ],
        "the Kubernetes protos",
    )


# ------------------------------------------------------------------ vendoring


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True
    ).stdout


_STRUCT = re.compile(r"^type (\w+) struct \{")
_FIELD = re.compile(r"^\s+\w+\s+(\*?[\w.\[\]*]+)\s+`([^`]*)`")
_EMBEDDED = re.compile(r"^\s+\*?(?:\w+\.)?(\w+)\s+`([^`]*)`")
_PROTO_NAME = re.compile(r'protobuf:"[^"]*\bname=(\w+)')


def _go_fields(source: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(struct, protobuf field name) of the pointer fields and of the inlined embedded
    structs (``json:",inline"``) in Go ``source``."""
    pointers: set[tuple[str, str]] = set()
    inline: set[tuple[str, str]] = set()
    struct = ""
    for line in source.splitlines():
        if m := _STRUCT.match(line):
            struct = m.group(1)
        elif line.startswith("}"):
            struct = ""
        elif not struct:
            continue
        elif m := _FIELD.match(line):
            if m.group(1).startswith("*") and (name := _PROTO_NAME.search(m.group(2))):
                pointers.add((struct, name.group(1)))
        elif (m := _EMBEDDED.match(line)) and 'json:",inline"' in m.group(2):
            if "protobuf:" not in m.group(2):
                continue  # TypeMeta: not on the wire
            name = _PROTO_NAME.search(m.group(2))
            # go-to-protobuf names an unnamed embedded field after its type, lowerCamel.
            go_type = m.group(1)
            inline.add((struct, name.group(1) if name else go_type[0].lower() + go_type[1:]))
    return pointers, inline


def vendor_k8s(api_git: Path, machinery_git: Path, ref: str = K8S_REF) -> None:
    from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

    gits = {"api": api_git, "apimachinery": machinery_git}
    pointers: set[str] = set()
    inline: set[str] = set()
    for repo, pkg in K8S_PACKAGES:
        git = gits[repo]
        target = ROOT / K8S_DIR / "k8s.io" / repo / pkg / "generated.proto"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_git(git, "show", f"{ref}:{pkg}/generated.proto"))
        proto_pkg = f"k8s.io.{repo}.{pkg}".replace("/", ".")
        for path in _git(git, "ls-tree", "--name-only", f"{ref}:{pkg}").split():
            if not path.endswith(".go") or path.endswith("_test.go"):
                continue
            if path.startswith("zz_generated") or path.endswith(".pb.go"):
                continue
            ptrs, inl = _go_fields(_git(git, "show", f"{ref}:{pkg}/{path}"))
            pointers |= {f"{proto_pkg}.{struct}.{field}" for struct, field in ptrs}
            inline |= {f"{proto_pkg}.{struct}.{field}" for struct, field in inl}
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fds = descriptor_pb2.FileDescriptorSet.FromString(
            (Path(tmp) / K8S_DESCRIPTORS).read_bytes()
        )
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)

    def field(full: str) -> descriptor.FieldDescriptor | None:
        message, _, name = full.rpartition(".")
        try:
            return pool.FindMessageTypeByName(message).fields_by_name[name]
        except KeyError:
            return None  # a Go type with no message in the vendored protos

    scalars = sorted(p for p in pointers if (fd := field(p)) and fd.message_type is None)
    for full in inline:
        fd = field(full)
        assert fd is not None and fd.message_type is not None, f"inline {full} not found"
    lines = [
        f'"""Generated by tools/gen_proto.py --vendor-k8s from the Go types of Kubernetes {ref}.',
        "Do not edit. What the Go structs behind the vendored messages say and the protos do not.",
        "",
        "POINTER_FIELDS: the scalar fields whose Go field is a pointer. For them a zero value",
        "on the wire was set by the client (replicas: 0, runAsUser: 0); for every other",
        'scalar a zero value is how Go writes "not set", and its JSON omits it.',
        "",
        'INLINE_FIELDS: embedded structs with json:",inline" (Probe.handler, Volume.volumeSource):',
        "a message on the wire, their fields merged into the parent object in JSON.",
        '"""',
        "",
    ]
    for name, names in (("POINTER_FIELDS", scalars), ("INLINE_FIELDS", sorted(inline))):
        lines += [f"{name} = frozenset(", "    {", *(f'        "{n}",' for n in names)]
        lines += ["    }", ")", ""]
    (ROOT / K8S_GO_FIELDS).write_text("\n".join(lines[:-1]) + "\n")
    generate(ROOT)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--vendor-k8s":
        if len(sys.argv) not in (4, 5):
            raise SystemExit(__doc__)
        vendor_k8s(Path(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:])
    else:
        generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)

"""Kubernetes' protobuf schemas, vendored: data for ``hyperion.api.k8sproto``.

``k8s.io/…/generated.proto`` are Kubernetes' own files (Apache-2.0, see NOTICE), kept
verbatim under their import paths so that this directory is protoc's ``-I`` root.
``descriptors.binpb`` (their compiled descriptor set) and ``pointers.py`` are generated
by ``tools/gen_proto.py``; nothing here is edited by hand.
"""

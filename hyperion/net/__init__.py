"""Wire format (protobuf envelopes, signed) and the gRPC mutual-TLS transport."""

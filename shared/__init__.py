"""The one common library of the Qudao suite: config, logging, gRPC, database and bus."""

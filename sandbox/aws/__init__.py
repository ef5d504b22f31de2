"""The AWS side of the sandbox, inside the moto process: moto with its shims, the credentials API, the IAM token verifier."""

#!/usr/bin/env python3
"""Independent verification of a breakglass PASETO v4.public token with pyseto.

usage: verify_paseto.py PASERK TOKEN EXPECTED_CLAIMS_JSON

Prints VALID and the claims (exit 0), REJECTED and why (exit 1), or MISMATCH (exit 2).
"""
import json
import sys

import pyseto
from pyseto import Key


def main() -> int:
    paserk, token, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    key = Key.from_paserk(paserk)
    try:
        decoded = pyseto.decode(key, token, deserializer=json)
    except Exception as e:  # pyseto raises VerifyError, DecryptError, ValueError
        print(f"REJECTED {type(e).__name__}: {e}")
        return 1
    claims = decoded.payload
    for name in ("iat", "nbf", "exp"):
        if name not in claims:
            print(f"MISMATCH missing {name}")
            return 2
    for name, want in expected.items():
        if claims.get(name) != want:
            print(f"MISMATCH {name}: {claims.get(name)!r} != {want!r}")
            return 2
    print("VALID " + json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

# What the token aws-key-rotator uses needs on each Vault / OpenBao KV v2 consumer
# (`vault: { mount: MOUNT, path: PATH }` in the manifest): read the secret (its other fields
# and its version), and write it back with check-and-set. Nothing else: no list, no delete,
# no metadata.
path "MOUNT/data/PATH" {
  capabilities = ["read", "create", "update"]
}

# With a JWT login (input vault-role), bind the role to the repository and branch that run the
# rotation, for example:
#   bao write auth/jwt/role/aws-key-rotator role_type=jwt user_claim=sub \
#     bound_audiences=https://vault.example.com:8200 \
#     bound_claims='{"repository":"acme/ops","ref":"refs/heads/main"}' \
#     token_policies=aws-key-rotator token_ttl=1h   # at least the verification timeout + 15 minutes

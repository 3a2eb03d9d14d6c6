# aws-key-rotator container action image: the static binary and CA roots, nothing else — no
# shell, no libc files, no NSS modules, no package manager.
#
# Built only by scripts/image (here, in CI and in release.yml alike): it builds the binary with
# cargo (glibc, statically linked, for the machine's own architecture) and assembles the build
# context this file packages. No base image is pulled. GitHub runs container actions as root in
# /github/workspace; the binary relies on neither a USER nor a WORKDIR.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY aws-key-rotator /aws-key-rotator
ENTRYPOINT ["/aws-key-rotator"]

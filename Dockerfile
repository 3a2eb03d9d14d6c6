# aws-key-rotator container action image.
#
# Stage 1 builds a static binary on musl (whose resolver needs no NSS modules, so host names
# resolve on an empty image). Stage 2 is the image GitHub runs: the binary and CA roots, nothing
# else — no shell, no package manager. GitHub runs container actions as root in
# /github/workspace; the binary relies on neither a USER nor a WORKDIR.

FROM rust:1.95-alpine3.22 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin aws-key-rotator \
    && mkdir -p /out \
    && cp target/release/aws-key-rotator /out/aws-key-rotator

# --- runtime stage (tests/container.rs builds exactly these lines on a locally built binary) ---
FROM scratch AS runtime
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/aws-key-rotator /aws-key-rotator
ENTRYPOINT ["/aws-key-rotator"]

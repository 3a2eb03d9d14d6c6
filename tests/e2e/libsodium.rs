//! What the sealing code produces is opened by real libsodium (PyNaCl).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;

#[test]
fn libsodium_opens_what_we_seal() {
    let private = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
    let public_b64 = STANDARD.encode(private.public_key().as_bytes());
    let scope = aws_key_rotator::seal::ScopeKey::parse("42", &public_b64).unwrap();
    let plaintext = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY+/=";
    let sealed =
        aws_key_rotator::seal::seal(&scope, &SecretString::from(plaintext.to_owned())).unwrap();
    assert_eq!(sealed.key_id, "42");
    let script = "import sys, base64\n\
from nacl.public import PrivateKey, SealedBox\n\
sk = PrivateKey(base64.b64decode(sys.argv[1]))\n\
sys.stdout.write(SealedBox(sk).decrypt(base64.b64decode(sys.argv[2])).decode())\n";
    let out = std::process::Command::new(crate::support::python())
        .args([
            "-c",
            script,
            &STANDARD.encode(private.to_bytes()),
            &sealed.encrypted_value,
        ])
        .output()
        .expect("python with PyNaCl (scripts/setup-test-env)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), plaintext);
}

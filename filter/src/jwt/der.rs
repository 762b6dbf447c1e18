//! Minimal DER writer for an RSA SubjectPublicKeyInfo (RFC 8017 A.1.1, RFC 5280 §4.1), so a
//! host with native crypto (Envoy's `verify_signature`) gets keys prepared once at JWKS load.

use alloc::vec::Vec;

/// rsaEncryption OID 1.2.840.113549.1.1.1 followed by NULL parameters, as a DER SEQUENCE body.
const RSA_ALGORITHM_ID: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or(&[]);
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    push_len(out, body.len());
    out.extend_from_slice(body);
}

fn push_unsigned_integer(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed = match be.iter().position(|b| *b != 0) {
        Some(i) => be.get(i..).unwrap_or(&[]),
        None => &[0],
    };
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    push_tlv(out, 0x02, &body);
}

/// DER SubjectPublicKeyInfo for the RSA public key (n, e), both big-endian unsigned.
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut ints = Vec::with_capacity(n.len() + e.len() + 16);
    push_unsigned_integer(&mut ints, n);
    push_unsigned_integer(&mut ints, e);
    let mut rsa_public_key = Vec::with_capacity(ints.len() + 8);
    push_tlv(&mut rsa_public_key, 0x30, &ints);
    let mut bit_string = Vec::with_capacity(rsa_public_key.len() + 1);
    bit_string.push(0); // no unused bits
    bit_string.extend_from_slice(&rsa_public_key);
    let mut body = Vec::with_capacity(bit_string.len() + 32);
    body.extend_from_slice(&RSA_ALGORITHM_ID);
    push_tlv(&mut body, 0x03, &bit_string);
    let mut out = Vec::with_capacity(body.len() + 8);
    push_tlv(&mut out, 0x30, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers_are_minimal() {
        let mut out = Vec::new();
        push_len(&mut out, 0x7f);
        push_len(&mut out, 0x80);
        push_len(&mut out, 0x1234);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
        let mut int = Vec::new();
        push_unsigned_integer(&mut int, &[0x00, 0x80]);
        assert_eq!(int, [0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn small_key_has_expected_encoding() {
        // n = 0xC1 (needs a leading zero), e = 65537
        let der = rsa_spki(&[0xc1], &[0x01, 0x00, 0x01]);
        let expected: [u8; 31] = [
            0x30, 0x1d, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
            0x01, 0x05, 0x00, 0x03, 0x0c, 0x00, 0x30, 0x09, 0x02, 0x02, 0x00, 0xc1, 0x02, 0x03,
            0x01, 0x00, 0x01,
        ];
        assert_eq!(der, expected);
    }
}

//! RSA PKCS#1 v1.5 verification by Envoy's native `verify_signature` foreign function
//! (BoringSSL), with a hand-written protobuf encoding of its argument and result:
//!
//! `VerifySignatureArguments { 1: hash_function string, 2: public_key bytes (DER),
//! 3: signature bytes, 4: text bytes }` → `VerifySignatureResult { 1: result bool, 2: error string }`.

use std::cell::Cell;
use std::rc::Rc;

use mcpgate_filter::jwt::NativeRsa;

use crate::hostcalls::Host;

/// Calls Envoy's `verify_signature`; remembers when the host lacks it and stops asking.
pub struct EnvoyRsa {
    host: Rc<dyn Host>,
    unavailable: Cell<bool>,
}

impl EnvoyRsa {
    pub fn new(host: Rc<dyn Host>) -> Self {
        Self {
            host,
            unavailable: Cell::new(false),
        }
    }
}

const FUNCTION: &str = "verify_signature";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited field (wire type 2).
fn put_bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Encodes `VerifySignatureArguments` with the key as DER.
pub fn encode_arguments(hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + hash.len() + spki_der.len() + signature.len() + text.len());
    put_bytes(&mut out, 1, hash.as_bytes());
    put_bytes(&mut out, 2, spki_der);
    put_bytes(&mut out, 3, signature);
    put_bytes(&mut out, 4, text);
    out
}

fn get_varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes `VerifySignatureResult` into (result, error). `None` when malformed.
pub fn decode_result(data: &[u8]) -> Option<(bool, String)> {
    let mut pos = 0;
    let mut result = false;
    let mut error = String::new();
    while pos < data.len() {
        let tag = get_varint(data, &mut pos)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => result = get_varint(data, &mut pos)? != 0,
            (field, 2) => {
                let len = usize::try_from(get_varint(data, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let bytes = data.get(pos..end)?;
                pos = end;
                if field == 2 {
                    error = String::from_utf8_lossy(bytes).into_owned();
                }
            }
            (_, 0) => {
                get_varint(data, &mut pos)?;
            }
            (_, 1) => pos = pos.checked_add(8)?,
            (_, 5) => pos = pos.checked_add(4)?,
            _ => return None,
        }
    }
    (pos == data.len()).then_some((result, error))
}

impl NativeRsa for EnvoyRsa {
    fn verify_pkcs1v15(
        &self,
        hash: &'static str,
        spki_der: &[u8],
        signature: &[u8],
        message: &[u8],
    ) -> Option<bool> {
        if self.unavailable.get() {
            return None;
        }
        let args = encode_arguments(hash, spki_der, signature, message);
        match self.host.verify_signature(&args) {
            // A failed verification carries an error text ("Failed to verify digest" …);
            // only the boolean matters.
            Ok(Some(reply)) => decode_result(&reply).map(|(ok, _)| ok),
            Ok(None) => None,
            Err(true) => {
                log::info!(
                    "foreign function {FUNCTION} not offered by this host; using pure-Rust RSA"
                );
                self.unavailable.set(true);
                None
            }
            Err(false) => None,
        }
    }
}

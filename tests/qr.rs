//! QR codes read back by a real decoder: Debian's `zbarimg` (zbar-tools) scans images of the
//! codes the relay makes, for every version the encoder has, so a mistake in any part of the
//! symbol (error correction, interleaving, masks, format or version information) fails here.

mod support;

use streampump::qr::QrCode;
use support::zbar::{write_pgm, zbar_decode};
use support::{require_tool, scratch_dir};

fn decoded(code: &QrCode, name: &str) -> Vec<u8> {
    let dir = scratch_dir("qr");
    let path = dir.join(format!("{name}.pgm"));
    write_pgm(&path, code.framed_size(), |r, c| code.is_dark_framed(r, c));
    let text = zbar_decode(&path).unwrap_or_else(|error| panic!("{name}: {error}"));
    let _ = std::fs::remove_dir_all(&dir);
    text
}

#[test]
fn every_version_decodes_to_its_text() {
    require_tool("zbarimg", "--version", "zbar-tools");
    // One text for each version 1..=10 (capacities 14, 26, 42, 62, 84, 106, 122, 152, 180,
    // 213 bytes), each filling its version to the last byte, plus links as the relay writes
    // them.
    let mut texts: Vec<Vec<u8>> = [14, 26, 42, 62, 84, 106, 122, 152, 180, 213]
        .iter()
        .map(|&len| {
            let url = "http://192.168.1.2:19999/push.html?device_id=cam_kitchen&token=";
            let mut text = url.as_bytes().to_vec();
            text.extend(
                (0..)
                    .map(|k| b"abcdefghijklmnopqrstuvwxyz0123456789-._~"[k % 40])
                    .take(len.max(url.len()) - url.len()),
            );
            text.truncate(len);
            text
        })
        .collect();
    texts.push(b"http://[fd00::1]:19999/push.html".to_vec());
    texts.push(b"01234567".to_vec());
    for (index, text) in texts.iter().enumerate() {
        let code = QrCode::encode(text).expect("fits");
        let got = decoded(&code, &format!("text{index}"));
        // zbarimg ends its output with a newline.
        assert_eq!(
            String::from_utf8_lossy(got.strip_suffix(b"\n").unwrap_or(&got)),
            String::from_utf8_lossy(text),
            "version with {} modules",
            code.size()
        );
    }
}

#[test]
fn text_beyond_the_largest_version_is_refused() {
    assert!(QrCode::encode(&[b'a'; 213]).is_ok());
    let error = QrCode::encode(&[b'a'; 214]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "214 bytes do not fit in a QR code (at most 213)"
    );
}

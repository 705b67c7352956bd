//! Real clients from Debian's packages against the real relay. A missing tool fails the test
//! with instructions; it is never skipped (`make test` installs ffmpeg when it can).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::{require_tool, Relay};

/// Real JPEGs of a moving test pattern, made by ffmpeg.
fn test_pattern_jpegs(width: u32, height: u32, count: u32) -> Vec<Vec<u8>> {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "streampump-frames-{}-{width}x{height}-{count}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={width}x{height}:rate=10"))
        .args(["-frames:v", &count.to_string(), "-q:v", "5"])
        .arg(dir.join("%03d.jpg"))
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make test frames");
    let frames = (1..=count)
        .map(|n| std::fs::read(dir.join(format!("{n:03}.jpg"))).expect("read a test frame"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    frames
}

#[test]
fn ffmpeg_decodes_the_stream_without_errors() {
    require_tool("ffmpeg", "-version", "ffmpeg");
    let (width, height, wanted) = (320, 240, 25);
    let frames = test_pattern_jpegs(width, height, 20);
    let relay = Arc::new(Relay::start(&[]));
    relay.push_ok("ffcam", &frames[0]);

    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (relay, stop) = (Arc::clone(&relay), Arc::clone(&stop));
        thread::spawn(move || {
            for frame in frames.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                relay.push_ok("ffcam", frame);
                thread::sleep(Duration::from_millis(40));
            }
        })
    };

    let url = format!("http://{}/live.mjpeg?device_id=ffcam", relay.addr);
    let output = Command::new("timeout")
        .args([
            "30",
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
        ])
        .args(["-use_wallclock_as_timestamps", "1", "-i", &url])
        .args([
            "-frames:v",
            &wanted.to_string(),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    stop.store(true, Ordering::Relaxed);
    pusher.join().unwrap();

    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ffmpeg failed ({}): {errors}",
        output.status
    );
    assert!(
        errors.trim().is_empty(),
        "ffmpeg reported problems: {errors}"
    );
    // Every frame decoded at full size: width × height grey bytes each.
    assert_eq!(output.stdout.len(), (width * height * wanted) as usize);
}

#[test]
fn ffprobe_sees_an_mjpeg_stream_of_the_pushed_size() {
    require_tool("ffprobe", "-version", "ffmpeg");
    let frames = test_pattern_jpegs(640, 480, 1);
    let relay = Relay::start(&[]);
    relay.push_ok("probe", &frames[0]);
    let url = format!("http://{}/live.mjpeg?device_id=probe", relay.addr);
    let output = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            &url,
        ])
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text.trim(), "mjpeg,640,480");
}

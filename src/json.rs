// SPDX-License-Identifier: MPL-2.0
//! JSON Lines output: one object per frame, pixel coordinates, angles in degrees.

use std::fmt::Write as _;

use crate::engine::Face;
use crate::engine::attention::{AttentionEvent, FaceAttention};
use crate::engine::pose::Pose;

fn number(out: &mut String, v: f32) {
    if v.is_finite() {
        let _ = write!(out, "{}", (v as f64 * 1000.0).round() / 1000.0);
    } else {
        out.push_str("null");
    }
}

/// `"key":{"yaw":…,"pitch":…,"roll":…}`, or `"key":null`.
fn angles(out: &mut String, key: &str, pose: Option<Pose>) {
    let _ = write!(out, ",\"{key}\":");
    match pose {
        Some(p) => {
            out.push_str("{\"yaw\":");
            number(out, p.yaw);
            out.push_str(",\"pitch\":");
            number(out, p.pitch);
            out.push_str(",\"roll\":");
            number(out, p.roll);
            out.push('}');
        }
        None => out.push_str("null"),
    }
}

/// A JSON string literal.
fn string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn time(out: &mut String, key: &str, t: Option<u64>) {
    let _ = write!(out, "\"{key}\":");
    match t {
        Some(t) => {
            let _ = write!(out, "{t}");
        }
        None => out.push_str("null"),
    }
}

/// One frame as a JSON object on one line (no trailing newline), with the attention episodes
/// and tracks that ended on it.
pub fn frame_line(
    pts: Option<u64>,
    width: u32,
    height: u32,
    faces: &[Face],
    events: &[AttentionEvent],
) -> String {
    let mut s = String::with_capacity(256 + faces.len() * 468 * 24);
    s.push('{');
    frame_fields(&mut s, pts, width, height, faces, events);
    s
}

/// The line written when the tracks still open end with the stream (`why`: `eos`), a flush
/// (`flush`) or a new stream (`stream-start`): `{"tracks_ended":"eos","attention_events":[…]}`.
/// It has no `pts`: it is not a frame.
pub fn tracks_ended_line(why: &str, events: &[AttentionEvent]) -> String {
    let mut s = String::from("{\"tracks_ended\":");
    string(&mut s, why);
    s.push(',');
    attention_events(&mut s, events);
    s.push('}');
    s
}

fn list(out: &mut String, values: &[f32]) {
    out.push('[');
    for (k, v) in values.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        number(out, *v);
    }
    out.push(']');
}

fn or_null(out: &mut String, values: Option<&[f32]>) {
    match values {
        Some(v) => list(out, v),
        None => out.push_str("null"),
    }
}

/// `,"attention":{…}` of one face, or `,"attention":null`.
fn face_attention(out: &mut String, a: Option<&FaceAttention>) {
    out.push_str(",\"attention\":");
    let Some(a) = a else {
        out.push_str("null");
        return;
    };
    out.push_str("{\"position\":");
    or_null(out, a.position.as_ref().map(|p| &p[..]));
    out.push_str(",\"position_source\":");
    match a.position_source {
        Some(src) => string(out, src.name()),
        None => out.push_str("null"),
    }
    out.push_str(",\"gaze\":");
    list(out, &a.gaze);
    out.push_str(",\"camera_angle\":");
    number(out, a.camera_angle);
    let _ = write!(
        out,
        ",\"looking_at_camera\":{},\"target_point\":",
        a.looking_at_camera
    );
    or_null(out, a.target_point.as_ref().map(|p| &p[..]));
    let _ = write!(out, ",\"looking\":{},", a.looking);
    time(out, "episode_start", a.episode_start);
    let _ = write!(
        out,
        ",\"visible_ns\":{},\"looking_ns\":{},\"episodes\":{}}}",
        a.visible_ns, a.looking_ns, a.episodes
    );
}

/// `"attention_events":[…]`.
fn attention_events(out: &mut String, events: &[AttentionEvent]) {
    out.push_str("\"attention_events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        event_fields(out, e);
        out.push('}');
    }
    out.push(']');
}

/// One event's fields, `"event":…,"id":…,…,"episodes":…` (no braces).
fn event_fields(out: &mut String, e: &AttentionEvent) {
    out.push_str("\"event\":");
    string(out, e.kind.name());
    let _ = write!(out, ",\"id\":{},", e.id);
    time(out, "start", e.start);
    out.push(',');
    time(out, "end", e.end);
    let _ = write!(
        out,
        ",\"duration_ns\":{},\"visible_ns\":{},\"looking_ns\":{},\"episodes\":{}",
        e.duration_ns(),
        e.visible_ns,
        e.looking_ns,
        e.episodes
    );
}

/// Whether the process's standard output was closed when it started (`… >&-`), so that
/// descriptor 1 now belongs to something the process opened itself: lines written there would go
/// astray. Descriptor 1 is then not open at all, or (what GStreamer opens first) one end of a Unix
/// socket pair whose other end is this very process, which a real standard output never is (a
/// pipe, a file, a terminal, or a socket to another process such as journald).
pub fn standard_output_closed() -> bool {
    // SAFETY: fstat and getsockopt only write into the local structures passed, of the sizes
    // given; descriptor 1 is not closed or changed.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(1, &mut st) != 0 {
            return true;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return false;
        }
        let mut cred: libc::ucred = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        let asked = libc::getsockopt(
            1,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        );
        asked == 0 && cred.pid == libc::getpid()
    }
}

/// A frame's timestamps in nanoseconds (None: the buffer or segment has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameTimes {
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub duration: Option<u64>,
    pub running_time: Option<u64>,
    pub stream_time: Option<u64>,
}

/// The message `faceposepublish` sends: the JSON Lines object of [`frame_line`] (the attention
/// events of the frame included) with the `source` name and the frame's other timestamps first.
pub fn published_message(
    source: &str,
    t: &FrameTimes,
    width: u32,
    height: u32,
    faces: &[Face],
    events: &[AttentionEvent],
) -> String {
    let mut s = String::with_capacity(384 + faces.len() * 468 * 24);
    s.push_str("{\"source\":");
    string(&mut s, source);
    for (key, v) in [
        ("dts", t.dts),
        ("duration", t.duration),
        ("running_time", t.running_time),
        ("stream_time", t.stream_time),
    ] {
        s.push(',');
        time(&mut s, key, v);
    }
    s.push(',');
    frame_fields(&mut s, t.pts, width, height, faces, events);
    s
}

/// The message `faceposepublish` sends on `<topic>/attention` for each ended episode or track:
/// `{"source":…,"pts":<the frame's>,"event":"episode",…}` with the fields of
/// `attention_events` entries.
pub fn attention_message(source: &str, pts: Option<u64>, event: &AttentionEvent) -> String {
    let mut s = String::from("{\"source\":");
    string(&mut s, source);
    s.push(',');
    time(&mut s, "pts", pts);
    s.push(',');
    event_fields(&mut s, event);
    s.push('}');
    s
}

/// Everything of a frame's object after its opening brace, from `"pts"` on.
fn frame_fields(
    s: &mut String,
    pts: Option<u64>,
    width: u32,
    height: u32,
    faces: &[Face],
    events: &[AttentionEvent],
) {
    time(s, "pts", pts);
    let _ = write!(s, ",\"width\":{width},\"height\":{height},\"faces\":[");
    for (i, f) in faces.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{{\"id\":{},\"box\":[", f.id);
        for (k, v) in [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1]
            .into_iter()
            .enumerate()
        {
            if k > 0 {
                s.push(',');
            }
            number(s, v);
        }
        s.push_str("],\"score\":");
        number(s, f.score);
        s.push_str(",\"presence\":");
        number(s, f.presence);
        s.push_str(",\"yaw\":");
        number(s, f.pose.yaw);
        s.push_str(",\"pitch\":");
        number(s, f.pose.pitch);
        s.push_str(",\"roll\":");
        number(s, f.pose.roll);
        let _ = write!(s, ",\"method\":\"{}\"", f.method.name());
        angles(s, "fit", f.fit_pose);
        angles(s, "regression", f.regressed_pose);
        s.push_str(",\"regression_weight\":");
        number(s, f.regressor_weight);
        face_attention(s, f.attention.as_ref());
        s.push_str(",\"landmarks\":[");
        for (k, p) in f.landmarks.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            s.push('[');
            number(s, p[0]);
            s.push(',');
            number(s, p[1]);
            s.push(',');
            number(s, p[2]);
            s.push(']');
        }
        s.push_str("]}");
    }
    s.push_str("],");
    attention_events(s, events);
    s.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::geometry::{BBox, Point};
    use crate::engine::pose::PoseMethod;

    #[test]
    fn a_frame_line_holds_every_field_and_nulls_for_non_finite_values() {
        let face = Face {
            id: 3,
            bbox: BBox::new(1.0, 2.0, 3.5, 4.0),
            score: 0.9,
            keypoints: [Point::default(); 5],
            landmarks: vec![[1.0, 2.0, f32::NAN]],
            presence: 1.0,
            pose: Pose {
                yaw: 10.0,
                pitch: -5.25,
                roll: 0.0,
            },
            rotation: Pose::default().to_rotation(),
            method: PoseMethod::Fused,
            fit_pose: Some(Pose {
                yaw: 8.0,
                pitch: -5.0,
                roll: 0.5,
            }),
            regressed_pose: None,
            regressor_weight: 0.25,
            scale: 1.0,
            fit_error: 0.0,
            attention: None,
        };
        let line = frame_line(Some(42), 640, 480, &[face], &[]);
        assert_eq!(
            line,
            "{\"pts\":42,\"width\":640,\"height\":480,\"faces\":[{\"id\":3,\"box\":[1,2,3.5,4],\"score\":0.9,\
             \"presence\":1,\"yaw\":10,\"pitch\":-5.25,\"roll\":0,\"method\":\"fused\",\
             \"fit\":{\"yaw\":8,\"pitch\":-5,\"roll\":0.5},\"regression\":null,\
             \"regression_weight\":0.25,\"attention\":null,\"landmarks\":[[1,2,null]]}],\
             \"attention_events\":[]}"
        );
        assert_eq!(
            frame_line(None, 1, 1, &[], &[]),
            "{\"pts\":null,\"width\":1,\"height\":1,\"faces\":[],\"attention_events\":[]}"
        );
    }

    #[test]
    fn a_published_message_names_its_source_and_times_first() {
        let t = FrameTimes {
            pts: Some(5),
            dts: None,
            duration: Some(33),
            running_time: Some(7),
            stream_time: Some(5),
        };
        assert_eq!(
            published_message("cam \"1\"\n", &t, 2, 3, &[], &[]),
            "{\"source\":\"cam \\\"1\\\"\\u000a\",\"dts\":null,\"duration\":33,\"running_time\":7,\
             \"stream_time\":5,\"pts\":5,\"width\":2,\"height\":3,\"faces\":[],\
             \"attention_events\":[]}"
        );
    }
}

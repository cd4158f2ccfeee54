//! Unit tests of the scanner, the number readers and the fast paths.
use super::*;

#[test]
fn microseconds_become_exact_nanoseconds() {
    assert_eq!(us_to_ns(b"5100925893139.901"), Some(5_100_925_893_139_901));
    assert_eq!(us_to_ns(b"2.5"), Some(2_500));
    assert_eq!(us_to_ns(b"7"), Some(7_000));
    assert_eq!(us_to_ns(b"0.0015"), Some(2));
    assert_eq!(us_to_ns(b"-1.25"), Some(-1_250));
    assert_eq!(us_to_ns(b"1e3"), Some(1_000_000));
    assert_eq!(us_to_ns(b"abc"), None);
    // From 2^62 ns (146 years) on a value is no time: the sum of two must not overflow.
    assert_eq!(us_to_ns(b"4611686018427387.903"), Some((1 << 62) - 1));
    assert_eq!(us_to_ns(b"-4611686018427387.903"), Some(1 - (1 << 62)));
    assert_eq!(us_to_ns(b"4611686018427387.904"), None);
    assert_eq!(us_to_ns(b"-4611686018427387.905"), None);
    assert_eq!(us_to_ns(b"5100925897550e100"), None);
    assert_eq!(us_to_ns(b"1e400"), None);
    // An exponent decides before the integer part is scaled to nanoseconds.
    assert_eq!(us_to_ns(b"10000000000000000e-10"), Some(1_000_000_000));
    assert_eq!(micros_at(b"4611686018427387.905,", 0), None);
    // Rounding up at the very top of i64 is a miss, not an overflow.
    assert_eq!(us_to_ns(b"9223372036854775.8075"), None);
    assert_eq!(micros_at(b"9223372036854775.8075,", 0), None);
}

#[test]
fn one_pass_numbers_agree_with_the_general_conversions() {
    let texts = [
        "0",
        "7",
        "-7",
        "42.5",
        "5100925893139.901",
        "5100925893139.9015",
        "5100925893139.9014",
        "0.0015",
        "-1.25",
        "1.",
        "1e3",
        "1.5e2",
        "--1",
        "-",
        "+1",
        "12-3",
        "9223372036854775807",
        "9223372036854775808",
        "2934784.435",
        "3.99999",
        ".5",
        "00012",
        "1.2.3",
    ];
    for t in texts {
        for end in [", ", "}", "\n", "e", "-", "."] {
            let text = format!("{t}{end}");
            let b = text.as_bytes();
            // The general path: the scanner's number run, then the conversion.
            let general = num_at(b, 0).filter(|(n, _)| n.len() == t.len());
            let ns = general.and_then(|(n, k)| us_to_ns(n).map(|v| (v, k)));
            let int = general.and_then(|(n, k)| {
                let digits = n.strip_prefix(b"-").unwrap_or(n);
                digits.iter().all(u8::is_ascii_digit).then_some(())?;
                parse_i64(n).map(|v| (v, k))
            });
            // One pass either agrees or declines (never a different value).
            if let Some(got) = micros_at(b, 0) {
                assert_eq!(Some(got), ns, "micros {text:?}");
            }
            if let Some(got) = int_at(b, 0) {
                assert_eq!(Some(got), int, "int {text:?}");
            }
            // Plain decimals followed by a delimiter are taken by the one pass.
            let plain = t
                .trim_start_matches('-')
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
                && t.matches('.').count() <= 1
                && t.matches('-').count() <= 1;
            if plain && matches!(end, ", " | "}" | "\n") && ns.is_some() {
                assert_eq!(micros_at(b, 0), ns, "plain {text:?}");
            }
        }
    }
}

#[test]
fn digit_runs_read_eight_at_a_time_match_a_digit_by_digit_read() {
    let naive = |b: &[u8]| -> Option<(i64, usize)> {
        let mut v: i64 = 0;
        let mut n = 0;
        while n < b.len() && b[n].is_ascii_digit() {
            v = v.checked_mul(10)?.checked_add((b[n] - b'0') as i64)?;
            n += 1;
        }
        Some((v, n))
    };
    // Every length 0..=20 of digits, each followed by every kind of byte.
    let digits = b"98765432109876543210123";
    for len in 0..=20 {
        for next in [
            b' ',
            b',',
            b'.',
            b'/',
            b':',
            b'e',
            0x00,
            0x8a,
            0xff,
            b'0' - 1,
        ] {
            let mut text = digits[..len].to_vec();
            text.push(next);
            text.extend_from_slice(b"123456789");
            assert_eq!(
                digits_at(&text, 0),
                naive(&text),
                "{len} digits then {next:#x}"
            );
        }
        // Without a terminator, at the end of the buffer.
        assert_eq!(
            digits_at(&digits[..len], 0),
            naive(&digits[..len]),
            "{len} at end"
        );
    }
    // Overflow is reported, not wrapped.
    assert_eq!(digits_at(b"9223372036854775807,", 0), Some((i64::MAX, 19)));
    assert_eq!(digits_at(b"9223372036854775808,", 0), None);
    assert_eq!(digits_at(b"00000000000000000000042,", 0), Some((42, 23)));
}

/// Events as Kineto writes them (copied from the H200 fixtures) take the fast paths.
#[test]
fn kineto_layout_events_take_the_fast_paths() {
    let python = b"{\n    \"ph\": \"X\", \"cat\": \"python_function\", \"name\": \"threading.py(1073): _bootstrap_inner\", \"pid\": 802, \"tid\": 0,\n    \"ts\": 5100925891744.910, \"dur\": 2934782.151,\n    \"args\": {\n      \"Python parent id\": 1, \"Python id\": 2, \"Ev Idx\": 26577\n    }\n  },";
    let mut store = TraceStore::default();
    let mut p = Parser::new(&mut store, State::EventsFirst, false, true);
    assert_eq!(p.python_frame_kineto(python, 0), Some(python.len() - 1));
    assert_eq!(store.frames.ts_ns, [5_100_925_891_744_910]);
    assert_eq!(store.frames.dur_ns, [2_934_782_151]);
    assert_eq!(
        (store.frames.python_id[0], store.frames.parent_python_id[0]),
        (2, 1)
    );
    let kernel = b"{\n    \"ph\": \"X\", \"cat\": \"kernel\", \"name\": \"nvjet_tst\", \"pid\": 0, \"tid\": 7,\n    \"ts\": 5100925898037.875, \"dur\": 0.736,\n    \"args\": {\n      \"External id\": 43,      \"queued\": 0, \"device\": 0, \"context\": 1,      \"stream\": 7, \"correlation\": 97,      \"grid\": [1, 1, 1],      \"block\": [64, 1, 1]\n    }\n  }";
    let (ev, end) = scan_event_kineto(kernel, 0).expect("kernel event in Kineto layout");
    assert_eq!(end, kernel.len());
    assert_eq!(
        (ev.cat, ev.correlation, ev.stream),
        (&b"kernel"[..], Some(&b"97"[..]), Some(&b"7"[..]))
    );
    // The full kernel args as Kineto writes them take the kernel template.
    let args = b"{\n      \"External id\": 43,      \"queued\": 0, \"device\": 0, \"context\": 1,      \"stream\": 7, \"correlation\": 97,      \"registers per thread\": 16,      \"shared memory\": 0,      \"blocks per SM\": 0.007576,      \"warps per SM\": 0.015152,      \"grid\": [1, 1, 1],      \"block\": [64, 1, 1],      \"est. achieved occupancy %\": 0\n    }\n  }";
    let (k, end) = kernel_args_kineto(args, 0).expect("kernel args in Kineto layout");
    assert_eq!(end, args.len());
    assert_eq!((k.correlation, k.block), (&b"97"[..], &b"[64, 1, 1]"[..]));
    let flow = b"{\n    \"ph\": \"f\", \"id\": 56, \"pid\": 802, \"tid\": 802, \"ts\": 5100925897555.992,\n    \"cat\": \"ac2g\", \"name\": \"ac2g\", \"bp\": \"e\"\n  }";
    let (ev, end) = scan_flow_kineto(flow, 0).expect("flow event in Kineto layout");
    assert_eq!(
        (ev.ph, ev.cat, ev.bp, end),
        (b'f', &b"ac2g"[..], &b"e"[..], flow.len())
    );
    // One byte of other whitespace and both fast paths step aside.
    let spaced = [&kernel[..1], b" ", &kernel[1..]].concat();
    assert!(scan_event_kineto(&spaced, 0).is_none());
    let mut store = TraceStore::default();
    let mut p = Parser::new(&mut store, State::EventsFirst, false, true);
    assert_eq!(
        p.python_frame_kineto(&[&python[..1], b" ", &python[1..]].concat(), 0),
        None
    );
    assert!(store.frames.is_empty());
}

/// Two names with the same cache key (they differ only in bytes the key skips) keep
/// their own ids: a hit is only taken after a full comparison.
#[test]
fn name_cache_collisions_still_give_each_name_its_own_id() {
    let a = b"vllm/model.py(1234567): forward";
    let mut b = *a;
    b[9] = b'X'; // outside the first, middle and last eight bytes
    assert_eq!(name_cache_key(a), name_cache_key(&b));
    let mut store = TraceStore::default();
    let mut p = Parser::new(&mut store, State::EventsFirst, false, true);
    let ids: Vec<NameId> = (0..6)
        .map(|i| p.intern_cached(if i % 2 == 0 { a } else { &b }).unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 0, 1, 0, 1]);
    assert_eq!(store.names.get(1).as_bytes(), &b[..]);
    // Short names (under eight bytes) and invalid UTF-8.
    let mut p = Parser::new(&mut store, State::EventsFirst, false, true);
    assert_eq!(p.intern_cached(b"f"), p.intern_cached(b"f"));
    assert_ne!(p.intern_cached(b"f"), p.intern_cached(b"g"));
    assert_eq!(p.intern_cached(b"\xff\xfe"), None);
}

#[test]
fn grid_triples_parse() {
    assert_eq!(dim3(Some(b"[64, 2, 1]")), [64, 2, 1]);
    assert_eq!(dim3(None), [0, 0, 0]);
}

#[test]
fn newline_counts_match_a_plain_count() {
    let text: Vec<u8> = (0..5000u32)
        .map(|i| {
            if i % 7 == 0 || i % 255 == 3 {
                b'\n'
            } else {
                (i % 200) as u8 + 11
            }
        })
        .collect();
    for len in [0, 1, 7, 8, 9, 2040, 2041, 4999, 5000] {
        let plain = text[..len].iter().filter(|&&c| c == b'\n').count() as u64;
        assert_eq!(count_nl(&text[..len]), plain, "first {len} bytes");
    }
    assert_eq!(count_nl(&[b'\n'; 3000]), 3000);
}

#[test]
fn batch_cuts_land_before_the_comma_between_two_events() {
    let b = br#"{"a": {"x": 1}}, {"b": [{"c": 2}, {"d": 3}]},
  {"e": 4}"#;
    let cut = last_boundary(b, 0).unwrap();
    assert_eq!(&b[cut..cut + 2], b",\n");
    assert!(b[..cut].ends_with(b"]}"));
    // Nothing before `from` is looked at.
    assert_eq!(last_boundary(b, cut + 1), None);
    assert_eq!(last_boundary(br#"{"a": 1}"#, 0), None);
}

#[test]
fn strings_end_at_the_first_unescaped_quote_at_any_length() {
    for len in 0..80 {
        let body = "x".repeat(len);
        let text = format!("\"{body}\", \"next\"");
        let (s, e, esc, next) = scan_string(text.as_bytes(), 0).unwrap();
        assert_eq!(
            (s, e, esc, next),
            (1, 1 + len, false, 2 + len),
            "plain, {len} bytes"
        );
        // An escaped quote (and backslash) at every position.
        let text = format!("\"{body}\\\"\\\\y\" tail");
        let (s, e, esc, _) = scan_string(text.as_bytes(), 0).unwrap();
        assert_eq!((s, e, esc), (1, len + 6, true), "escaped at {len}");
        let mut out = String::new();
        unescape(&text.as_bytes()[s..e], &mut out).unwrap();
        assert_eq!(out, format!("{body}\"\\y"));
        // No closing quote yet: more bytes are needed.
        let open = format!("\"{body}");
        assert!(matches!(
            scan_string(open.as_bytes(), 0),
            Err(ScanErr::Incomplete)
        ));
    }
}

#[test]
fn escapes_decode() {
    let mut s = String::new();
    unescape(br#"a\"b\u00e9\n"#, &mut s).unwrap();
    assert_eq!(s, "a\"b\u{e9}\n");
}

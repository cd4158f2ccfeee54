//! Markdown of one layer-pipeline analysis.

use crate::analyze::{Analysis, HotKernel, TypeRow};
use crate::config::ConfigLayers;
use crate::tool::MAX_LAYER_ROWS;
use std::fmt::Write as _;

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

use vllm_sota_core::md::{Align, Table, cell};

fn hot_table(out: &mut String, rows: &[HotKernel], share_label: &str) {
    let mut t = Table::new(&[
        ("Kernel", Align::Left),
        ("Family", Align::Left),
        ("Count", Align::Right),
        ("ms", Align::Right),
        (share_label, Align::Right),
        ("Ideal µs (roofline)", Align::Right),
        ("% of roofline", Align::Right),
        ("Bound", Align::Left),
        ("Shape", Align::Left),
    ]);
    for h in rows {
        let (ideal, bound, shape) = match &h.roofline {
            Some(r) => (
                format!("{:.1}", r.ideal_us),
                r.bound.clone(),
                r.shape.clone()
                    + &r.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        t.row(&[
            format!("`{}`", h.name),
            h.family.label().to_string(),
            h.count.to_string(),
            format!("{:.3}", h.ms),
            pct(h.share_of_layer),
            ideal,
            h.percent_of_roofline
                .map(|p| format!("{p:.0}%"))
                .unwrap_or_else(|| "—".into()),
            bound,
            shape,
        ]);
    }
    out.push_str(&t.render());
}

/// Markdown for one analysis.
pub(crate) fn render(a: &Analysis, stage: &str, framework: &str, layers_truncated: bool) -> String {
    let mut o = String::new();
    header(&mut o, a, stage, framework);
    pass_section(&mut o, a);
    layers_section(&mut o, a);
    let _ = writeln!(o, "### Hot kernels of the whole pass\n");
    hot_table(&mut o, &a.pass_hot_kernels, "Share of pass kernel time");
    if !a.notes.is_empty() {
        let _ = writeln!(o, "\n### Notes\n");
        for n in &a.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    if layers_truncated {
        let _ = writeln!(
            o,
            "\n(Per-layer rows beyond {MAX_LAYER_ROWS} are in the JSON artifact only.)"
        );
    }
    o
}

fn header(o: &mut String, a: &Analysis, stage: &str, framework: &str) {
    let _ = writeln!(o, "## Layer pipeline: {framework} {stage}\n");
    let _ = writeln!(o, "- Trace: `{}`", a.trace);
    if let Some(m) = &a.mapping_trace {
        let _ = writeln!(o, "- Mapping trace: `{m}`");
    }
    let cfg: &ConfigLayers = &a.config;
    let _ = writeln!(
        o,
        "- Config: {} layers{}{}",
        cfg.num_layers
            .map(|n| n.to_string())
            .unwrap_or_else(|| "unknown".into()),
        cfg.model_type
            .as_ref()
            .map(|m| format!(", model_type `{m}`"))
            .unwrap_or_default(),
        if cfg.mtp_layers > 0 {
            format!(", {} MTP/draft layer(s)", cfg.mtp_layers)
        } else {
            String::new()
        }
    );
    if !cfg.layer_types.is_empty() {
        let _ = writeln!(
            o,
            "- Layer types from the config: {}",
            cfg.layer_types.join("; ")
        );
    }
    if let Some(p) = &cfg.problem {
        let _ = writeln!(o, "- **Config not understood**: {p}");
    }
    let _ = writeln!(o, "- Roofline GPU: {}\n", a.gpu);
}

fn pass_section(o: &mut String, a: &Analysis) {
    let p = &a.representative_pass;
    let _ = writeln!(o, "### Forward pass\n");
    let _ = writeln!(o, "Chosen: {}\n", a.selection.reason);
    let mut t = Table::new(&[
        ("Pass", Align::Right),
        ("Name", Align::Left),
        ("Delimited by", Align::Left),
        ("GPU wall ms", Align::Right),
        ("GPU busy ms", Align::Right),
        ("Kernels", Align::Right),
        ("Tokens", Align::Left),
    ]);
    let tokens = p
        .tokens
        .map(|t| {
            format!(
                "prefill {} req / {} tok, decode {} req / {} tok",
                t.context_requests, t.context_tokens, t.generation_requests, t.generation_tokens
            )
        })
        .unwrap_or_else(|| "—".into());
    t.row(&[
        p.index.to_string(),
        format!("`{}`", p.name),
        p.source.describe().to_string(),
        format!("{:.3}", p.wall_ms),
        format!("{:.3}", p.gpu_busy_ms),
        p.kernels.to_string(),
        tokens,
    ]);
    o.push_str(&t.render());
    o.push('\n');
    let bs = &a.between_steps;
    if bs.kernels > 0 {
        let top = bs
            .top
            .iter()
            .map(|t| format!("`{}` {:.3} ms", cell(&t.name), t.ms))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "Between steps (outside every pass): {} kernels, {:.3} ms, {} of all kernel time; largest: {top}\n",
            bs.kernels,
            bs.kernel_ms,
            pct(bs.share_of_pass)
        );
    }
    let _ = writeln!(o, "Pass kinds ({} passes in the trace):\n", a.passes_found);
    let mut kinds = Table::new(&[
        ("Kind", Align::Left),
        ("Passes", Align::Right),
        ("Median GPU wall ms", Align::Right),
    ]);
    for k in &a.pass_kinds {
        kinds.row(&[
            format!("`{}`", k.kind),
            k.passes.to_string(),
            format!("{:.3}", k.median_wall_ms),
        ]);
    }
    o.push_str(&kinds.render());
    let r = &p.perfetto;
    let _ = writeln!(
        o,
        "\nPerfetto (pass): timeline {} → {} from trace start ({}); URL `{}`{}\n",
        r.ui_start,
        r.ui_end,
        r.duration,
        r.url_query,
        r.wall_clock_start_utc
            .as_ref()
            .map(|w| format!("; wall clock {w}"))
            .unwrap_or_default()
    );
}

fn layers_section(o: &mut String, a: &Analysis) {
    let _ = writeln!(o, "### Layers\n");
    match &a.layer_source {
        Some(src) => {
            let _ = writeln!(
                o,
                "{} layers found by {src}{}.\n",
                a.layers_found,
                a.expected_layers
                    .map(|n| format!(" (config: {n})"))
                    .unwrap_or_default()
            );
            let mut t = Table::new(&[
                ("Work outside layers", Align::Left),
                ("Kernels", Align::Right),
                ("Kernel ms", Align::Right),
                ("Wall ms", Align::Right),
                ("Kernel time / pass wall", Align::Right),
                ("Largest", Align::Left),
            ]);
            for (label, w) in [
                ("pre-layer (embedding, step setup)", &a.pre_layer),
                ("post-layer (final norm, lm_head, sampling)", &a.post_layer),
                ("between layers", &a.between_layers),
                (
                    "after the pass, before the next (outside the step annotation)",
                    &a.after_pass,
                ),
            ] {
                let top = w
                    .top
                    .iter()
                    .map(|t| format!("`{}` {:.3} ms", t.name, t.ms))
                    .collect::<Vec<_>>()
                    .join(", ");
                let wall = w
                    .wall_ms
                    .map(|x| format!("{x:.3}"))
                    .unwrap_or_else(|| "—".into());
                t.row(&[
                    label.to_string(),
                    w.kernels.to_string(),
                    format!("{:.3}", w.kernel_ms),
                    wall,
                    pct(w.share_of_pass),
                    top,
                ]);
            }
            o.push_str(&t.render());
            type_table(o, &a.type_table);
            gaps_section(o, a);
            let _ = writeln!(
                o,
                "#### Representative layers (the median layer of each type by GPU time)\n"
            );
            for rl in &a.representative_layers {
                let _ = writeln!(
                    o,
                    "**{}: layer {}** — GPU {:.3} ms, wall {:.3} ms, kernels {:.3} ms in {} launches. Perfetto: {} → {}, URL `{}`\n",
                    rl.layer_type,
                    rl.layer,
                    rl.gpu_ms,
                    rl.wall_ms,
                    rl.kernel_ms,
                    rl.kernels,
                    rl.perfetto.ui_start,
                    rl.perfetto.ui_end,
                    rl.perfetto.url_query
                );
                hot_table(o, &rl.hot_kernels, "Share of layer");
                o.push('\n');
            }
        }
        None => {
            let _ = writeln!(
                o,
                "No layer structure was found (see notes); the pass's hot kernels follow as a generic table.\n"
            );
        }
    }
}

/// Layer types on GPU time, wall time beside it, outlier gaps flagged.
fn type_table(o: &mut String, rows: &[TypeRow]) {
    let _ = writeln!(
        o,
        "\n#### Layer-type timing (GPU time per layer; wall time beside it)\n"
    );
    let mut table = Table::new(&[
        ("Type", Align::Left),
        ("Layers", Align::Left),
        ("Count", Align::Right),
        ("GPU mean ms", Align::Right),
        ("GPU median ms", Align::Right),
        ("GPU p95 ms", Align::Right),
        ("Share of pass GPU time", Align::Right),
        ("Wall mean ms", Align::Right),
        ("Wall median ms", Align::Right),
        ("Share of pass wall", Align::Right),
        ("Outlier gaps", Align::Left),
    ]);
    for t in rows {
        let flags = if t.gap_layers.is_empty() {
            "—".to_string()
        } else {
            format!(
                "{:.3} ms idle in layer {}",
                t.gap_ms,
                t.gap_layers
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        table.row(&[
            t.layer_type.clone(),
            t.layers.clone(),
            t.count.to_string(),
            format!("{:.3}", t.gpu_mean_ms),
            format!("{:.3}", t.gpu_median_ms),
            format!("{:.3}", t.gpu_p95_ms),
            pct(t.gpu_share_of_pass),
            format!("{:.3}", t.wall_mean_ms),
            format!("{:.3}", t.wall_median_ms),
            pct(t.wall_share_of_pass),
            flags,
        ]);
    }
    o.push_str(&table.render());
    let _ = writeln!(
        o,
        "\n(GPU time = union of the layer's kernel intervals; GPU share = summed layer GPU time / pass GPU busy time; wall = first kernel start → last kernel end; p95 interpolated between the nearest ranks.)\n"
    );
}

/// The pass's outlier GPU-idle gaps with their place and cause.
fn gaps_section(o: &mut String, a: &Analysis) {
    if a.idle_gaps.is_empty() {
        return;
    }
    let _ = writeln!(o, "#### Outlier GPU-idle gaps in the pass\n");
    for g in &a.idle_gaps {
        let _ = writeln!(o, "- {}", cell(&g.describe()));
    }
    o.push('\n');
}

//! Markdown output, one escaping rule: a table cell cannot break its row (`\` and `|`
//! escaped, newlines turned into `<br>`), and a table is built from a header and rows.

use std::fmt::Write as _;

/// Escape text for one markdown table cell.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Escape text for HTML/SVG content and attribute values.
pub fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Column alignment of a [`Table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A markdown table: header, alignment, rows; cells are escaped when added.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns as `(title, alignment)`.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Table {
            header: columns.iter().map(|(t, _)| cell(t)).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// One row; missing cells are empty, extra cells are an error in the caller's code
    /// and are dropped.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> &mut Self {
        let mut r: Vec<String> = cells
            .iter()
            .take(self.header.len())
            .map(|c| cell(c.as_ref()))
            .collect();
        r.resize(self.header.len(), String::new());
        self.rows.push(r);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, ending with a newline.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "| {} |", self.header.join(" | "));
        let seps: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        let _ = writeln!(o, "|{}|", seps.join("|"));
        for r in &self.rows {
            let _ = writeln!(o, "| {} |", r.join(" | "));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_a_row_and_tables_render() {
        assert_eq!(cell("a|b\nc\r\n"), "a\\|b<br>c<br>");
        assert_eq!(cell("a\\|b"), "a\\\\\\|b");
        let mut t = Table::new(&[("Kernel", Align::Left), ("ms", Align::Right)]);
        t.row(&["x|y", "1.5"]).row(&["z"]);
        assert_eq!(
            t.render(),
            "| Kernel | ms |\n|---|---:|\n| x\\|y | 1.5 |\n| z |  |\n"
        );
        assert_eq!(html("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}

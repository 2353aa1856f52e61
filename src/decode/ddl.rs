//! Statements in a row-based binlog that change a table's rows without row events:
//! `TRUNCATE`, `DROP TABLE`, `DROP DATABASE` and `RENAME TABLE` (which replaces the rows of a
//! name). The binlog decoder refuses them for a watched table whose rows it has applied, since
//! the views cannot follow them (nothing is lost silently).

/// A table (or, with `table: None`, every table of a database) whose rows a statement
/// replaces or removes without row events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emptied {
    /// The database.
    pub db: String,
    /// The table; `None` for all of the database's tables.
    pub table: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Dot,
    Comma,
    Other,
}

fn tokens(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = sql[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
        } else if (c == b'-' && b.get(i + 1) == Some(&b'-')) || c == b'#' {
            i = sql[i..].find('\n').map_or(b.len(), |e| i + e);
        } else if c == b'`' {
            let mut name = String::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'`' {
                    if b.get(i + 1) == Some(&b'`') {
                        name.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                let ch = sql[i..].chars().next().expect("in bounds");
                name.push(ch);
                i += ch.len_utf8();
            }
            out.push(Tok::Quoted(name));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Tok::Word(sql[start..i].to_string()));
        } else {
            out.push(match c {
                b'.' => Tok::Dot,
                b',' => Tok::Comma,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

fn is(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

fn ident(t: Option<&Tok>) -> Option<String> {
    match t? {
        Tok::Word(w) | Tok::Quoted(w) => Some(w.clone()),
        _ => None,
    }
}

/// `[db.]table` at `*at`, advancing past it.
fn name(toks: &[Tok], at: &mut usize, default_db: &str) -> Option<(String, String)> {
    let first = ident(toks.get(*at))?;
    if toks.get(*at + 1) == Some(&Tok::Dot) {
        let second = ident(toks.get(*at + 2))?;
        *at += 3;
        Some((first, second))
    } else {
        *at += 1;
        Some((default_db.to_string(), first))
    }
}

/// The tables `sql` (run with default database `default_db`) empties or replaces without
/// row events; empty for every other statement.
pub fn emptied(default_db: &str, sql: &str) -> Vec<Emptied> {
    let toks = tokens(sql);
    let t = |i: usize| toks.get(i);
    let mut out = Vec::new();
    let table = |(db, table): (String, String)| Emptied {
        db,
        table: Some(table),
    };
    if is(t(0), "TRUNCATE") {
        let mut at = if is(t(1), "TABLE") { 2 } else { 1 };
        if let Some(n) = name(&toks, &mut at, default_db) {
            out.push(table(n));
        }
    } else if is(t(0), "DROP") && (is(t(1), "DATABASE") || is(t(1), "SCHEMA")) {
        let at = if is(t(2), "IF") && is(t(3), "EXISTS") {
            4
        } else {
            2
        };
        if let Some(db) = ident(t(at)) {
            out.push(Emptied { db, table: None });
        }
    } else if is(t(0), "DROP") {
        let mut at = 1;
        if is(t(at), "TEMPORARY") {
            // A temporary table shadows, it does not hold the binlog's rows.
            return out;
        }
        if !is(t(at), "TABLE") && !is(t(at), "TABLES") {
            return out;
        }
        at += 1;
        if is(t(at), "IF") && is(t(at + 1), "EXISTS") {
            at += 2;
        }
        while let Some(n) = name(&toks, &mut at, default_db) {
            out.push(table(n));
            if t(at) != Some(&Tok::Comma) {
                break;
            }
            at += 1;
        }
    } else if is(t(0), "RENAME") && (is(t(1), "TABLE") || is(t(1), "TABLES")) {
        let mut at = 2;
        while let Some(from) = name(&toks, &mut at, default_db) {
            out.push(table(from));
            if !is(t(at), "TO") {
                break;
            }
            at += 1;
            let Some(to) = name(&toks, &mut at, default_db) else {
                break;
            };
            out.push(table(to));
            if t(at) != Some(&Tok::Comma) {
                break;
            }
            at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(db: &str, table: &str) -> Emptied {
        Emptied {
            db: db.into(),
            table: Some(table.into()),
        }
    }

    #[test]
    fn statements_that_empty_tables_are_recognised() {
        assert_eq!(
            emptied("orders", "TRUNCATE TABLE orders"),
            [t("orders", "orders")]
        );
        assert_eq!(
            emptied("x", "truncate `orders`.`order_items`"),
            [t("orders", "order_items")]
        );
        assert_eq!(
            emptied(
                "orders",
                "DROP TABLE IF EXISTS `orders`, warehouse.shipments /* generated by server */"
            ),
            [t("orders", "orders"), t("warehouse", "shipments")]
        );
        assert_eq!(
            emptied("", "DROP DATABASE IF EXISTS logistics"),
            [Emptied {
                db: "logistics".into(),
                table: None
            }]
        );
        assert_eq!(
            emptied(
                "orders",
                "RENAME TABLE orders TO old_orders, new_orders TO orders"
            ),
            [
                t("orders", "orders"),
                t("orders", "old_orders"),
                t("orders", "new_orders"),
                t("orders", "orders")
            ]
        );
        assert_eq!(
            emptied("orders", "/* x */ TRUNCATE `we``ird`"),
            [t("orders", "we`ird")]
        );
        for other in [
            "DROP TEMPORARY TABLE orders",
            "DROP INDEX i ON orders",
            "CREATE TABLE orders (id INT)",
            "ALTER TABLE orders ADD COLUMN x INT",
            "BEGIN",
            "COMMIT",
            "",
        ] {
            assert_eq!(emptied("orders", other), [], "{other}");
        }
    }
}

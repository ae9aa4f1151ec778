//! Column (array) inputs: every function evaluated over a multi-row batch,
//! with per-row patterns and NULLs, must agree with its scalar form.

use super::{ctx, rows_of};

async fn column(sql: &str) -> Vec<String> {
    rows_of(&ctx(), sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn string_columns() {
    let t = "(VALUES ('https://www.nexmark.com/x/y/item.htm', '/', 3), ('a,b', ',', 1), (NULL, '/', 0), ('', '/', 0), ('a/b', '/', 5)) AS t(s, sep, i)";
    assert_eq!(
        column(&format!("SELECT SPLIT_INDEX(s, sep, i) FROM {t}")).await,
        ["x", "b", "NULL", "NULL", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT SPLIT_INDEX(s, '/', 1) FROM {t}")).await,
        ["", "NULL", "NULL", "NULL", "b"]
    );
    assert_eq!(
        column(&format!("SELECT CONCAT(s, sep) FROM {t}")).await[1..3],
        ["a,b,", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT SUBSTRING(s FROM i FOR 2) FROM {t}")).await,
        ["tp", "a,", "NULL", "", ""]
    );
    assert_eq!(
        column(&format!("SELECT LPAD(sep, i, '*') FROM {t}")).await,
        ["**/", ",", "", "", "****/"]
    );
    assert_eq!(
        column(&format!("SELECT IS_ALPHA(s) FROM {t}")).await,
        ["false", "false", "false", "false", "false"]
    );
    assert_eq!(
        column(&format!("SELECT TO_BASE64(sep) FROM {t}")).await,
        ["Lw==", "LA==", "Lw==", "Lw==", "Lw=="]
    );
    assert_eq!(
        column(&format!("SELECT LEFT(s, i) FROM {t}")).await,
        ["htt", "a", "NULL", "", "a/b"]
    );
    assert_eq!(
        column(&format!("SELECT SHA2(sep, i * 128) FROM {t}")).await[2],
        "NULL"
    );
}

#[tokio::test]
async fn regex_columns() {
    let t = "(VALUES ('a1b22', '[0-9]+', 0), ('xyz', '(y)(z)', 2), ('abc', '(', 0), (NULL, 'a', 0), ('aaa', 'a', 1)) AS t(s, re, g)";
    assert_eq!(
        column(&format!("SELECT REGEXP_EXTRACT(s, re, g) FROM {t}")).await,
        ["1", "z", "NULL", "NULL", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT REGEXP_EXTRACT(s, '[a-z]') FROM {t}")).await,
        ["a", "x", "a", "NULL", "a"]
    );
    assert_eq!(
        column(&format!("SELECT REGEXP_REPLACE(s, re, '<$0>') FROM {t}")).await,
        ["a<1>b<22>", "x<yz>", "NULL", "NULL", "<a><a><a>"]
    );
    assert_eq!(
        column(&format!("SELECT REGEXP(s, re) FROM {t}")).await,
        ["true", "true", "NULL", "NULL", "true"]
    );
}

#[tokio::test]
async fn time_columns() {
    let t = "(VALUES ('2020-03-05 14:07:09', 'yyyy', 1583417229), ('2021-12-31 23:59:59.999', 'HH:mm:ss.SSS', 0), (NULL, 'yyyy', NULL), ('bad', 'bb', -1)) AS t(s, f, n)";
    assert_eq!(
        column(&format!("SELECT DATE_FORMAT(s, f) FROM {t}")).await,
        ["2020", "23:59:59.999", "NULL", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT HOUR(TO_TIMESTAMP(s)) FROM {t}")).await,
        ["14", "23", "NULL", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT DAYOFWEEK(TO_DATE(s)) FROM {t}")).await,
        ["5", "6", "NULL", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT FROM_UNIXTIME(n, f) FROM {t}")).await,
        ["2020", "00:00:00.000", "NULL", "NULL"]
    );
    assert_eq!(
        column(&format!("SELECT UNIX_TIMESTAMP(s) FROM {t}")).await,
        ["1583417229", "1640995199", "NULL", "-9223372036854775808"]
    );
    assert_eq!(
        column(&format!(
            "SELECT DATE_FORMAT(TO_TIMESTAMP_LTZ(n, 0), 'yyyy-MM-dd') FROM {t}"
        ))
        .await,
        ["2020-03-05", "1970-01-01", "NULL", "1969-12-31"]
    );
    assert_eq!(
        column(&format!(
            "SELECT SECOND(TO_TIMESTAMP_LTZ(n * 1000, 3)) FROM {t}"
        ))
        .await,
        ["9", "0", "NULL", "59"]
    );
}

#[tokio::test]
async fn numeric_and_conditional_columns() {
    let t = "(VALUES (7, 3, true), (-7, 0, false), (NULL, 2, NULL), (5, -2, true)) AS t(a, b, c)";
    assert_eq!(
        column(&format!("SELECT MOD(a, b) FROM {t}")).await,
        ["1", "NULL", "NULL", "1"]
    );
    assert_eq!(
        column(&format!("SELECT IF(c, a, b) FROM {t}")).await,
        ["7", "0", "2", "5"]
    );
    assert_eq!(
        column(&format!("SELECT IF(c, 'yes', 'no') FROM {t}")).await,
        ["yes", "no", "no", "yes"]
    );
    assert_eq!(
        column(&format!("SELECT TRUNCATE(a * 11, -1) FROM {t}")).await,
        ["70", "-70", "NULL", "50"]
    );
    assert_eq!(
        column(&format!("SELECT LOG(b, 8) FROM {t}")).await[2],
        "3.0"
    );
    assert_eq!(
        column(&format!("SELECT CHR(a + 90) FROM {t}")).await,
        ["a", "S", "NULL", "_"]
    );
    let rand = column(&format!("SELECT RAND_INTEGER(a + 10) FROM {t}")).await;
    assert_eq!(rand[2], "NULL");
    // IF does not evaluate the branch it does not take.
    assert_eq!(
        column(&format!("SELECT IF(b = 0, -1, a / b) FROM {t}")).await,
        ["2", "-1", "NULL", "-2"]
    );
}

//! String functions: Flink semantics, NULLs, empty and hostile inputs.

use super::{check, eval, type_of};
use datafusion::arrow::datatypes::DataType;

#[tokio::test]
async fn split_index() {
    let url = "'https://www.nexmark.com/x/y/item.htm'";
    check(&[
        (&format!("SPLIT_INDEX({url}, '/', 3)"), "x"),
        (&format!("SPLIT_INDEX({url}, '/', 1)"), ""),
        (&format!("SPLIT_INDEX({url}, '/', 0)"), "https:"),
        (&format!("SPLIT_INDEX({url}, '/', 5)"), "item.htm"),
        (&format!("SPLIT_INDEX({url}, '/', 6)"), "NULL"),
        (&format!("SPLIT_INDEX({url}, '/', -1)"), "NULL"),
        (
            &format!("SPLIT_INDEX({url}, '/', 9223372036854775807)"),
            "NULL",
        ),
        ("SPLIT_INDEX('a::b::c', '::', 2)", "c"),
        ("SPLIT_INDEX('a.b', '.', 1)", "b"),
        ("SPLIT_INDEX('a/', '/', 1)", ""),
        ("SPLIT_INDEX('', '/', 0)", "NULL"),
        ("SPLIT_INDEX('a b', '', 1)", "b"),
        ("SPLIT_INDEX(NULL, '/', 0)", "NULL"),
        ("SPLIT_INDEX('a/b', NULL, 0)", "NULL"),
        ("SPLIT_INDEX('a/b', '/', NULL)", "NULL"),
        ("SPLIT_INDEX('é/ü', '/', 1)", "ü"),
    ])
    .await;
    assert_eq!(type_of("SPLIT_INDEX('a', '/', 0)").await, DataType::Utf8);
}

#[tokio::test]
async fn concat_is_null_if_any_argument_is() {
    check(&[
        ("CONCAT('a', 'b', 'c')", "abc"),
        ("CONCAT('a', NULL, 'c')", "NULL"),
        ("CONCAT('', '')", ""),
        ("CONCAT('x')", "x"),
        ("CONCAT('n', 1)", "n1"),
    ])
    .await;
}

#[tokio::test]
async fn substring_flink_positions() {
    check(&[
        ("SUBSTRING('hello' FROM 2 FOR 3)", "ell"),
        ("SUBSTRING('hello' FROM 2)", "ello"),
        ("SUBSTRING('hello' FROM -2)", "lo"),
        ("SUBSTRING('hello' FROM 0 FOR 2)", "he"),
        ("SUBSTRING('hello' FOR 2)", "he"),
        ("SUBSTRING('hello', 0, 2)", "he"),
        ("SUBSTRING('hello', 1, 2)", "he"),
        ("SUBSTRING('hello', -2)", "lo"),
        ("SUBSTRING('hello', -2, 1)", "l"),
        ("SUBSTRING('hello', -10)", ""),
        ("SUBSTRING('hello', 6)", ""),
        ("SUBSTRING('hello', 100, 2)", ""),
        ("SUBSTRING('hello', 2, -1)", "NULL"),
        ("SUBSTRING('hello', 2, 100)", "ello"),
        ("SUBSTRING('hello', 5, 1)", "o"),
        ("SUBSTR('héllo', 2, 2)", "él"),
        ("SUBSTR('', 1, 1)", ""),
        ("SUBSTR(NULL, 1, 1)", "NULL"),
        ("SUBSTR('abc', NULL)", "NULL"),
        ("SUBSTR('abc', 1, NULL)", "NULL"),
        (
            "SUBSTRING('abc', -9223372036854775807, 9223372036854775807)",
            "",
        ),
    ])
    .await;
}

#[tokio::test]
async fn left_right_locate() {
    check(&[
        ("LEFT('hello', 2)", "he"),
        ("LEFT('hello', -1)", ""),
        ("LEFT('hello', 99)", "hello"),
        ("RIGHT('hello', 2)", "lo"),
        ("RIGHT('hello', -1)", ""),
        ("RIGHT('héllo', 4)", "éllo"),
        ("RIGHT(NULL, 1)", "NULL"),
        ("LOCATE('l', 'hello')", "3"),
        ("LOCATE('l', 'hello', 4)", "4"),
        ("LOCATE('l', 'hello', 6)", "0"),
        ("LOCATE('z', 'hello')", "0"),
        ("LOCATE('l', 'héllo')", "3"),
        ("LOCATE('l', 'hello', 0)", "0"),
        ("LOCATE(NULL, 'hello')", "NULL"),
    ])
    .await;
}

#[tokio::test]
async fn padding() {
    check(&[
        ("LPAD('hi', 5, '?!')", "?!?hi"),
        ("LPAD('hello', 2, 'x')", "he"),
        ("LPAD('hi', 0, 'x')", ""),
        ("LPAD('hi', -1, 'x')", "NULL"),
        ("LPAD('hi', 5, '')", "NULL"),
        ("LPAD('hé', 4, 'ü')", "üühé"),
        ("RPAD('hi', 5, '?!')", "hi?!?"),
        ("RPAD('hello', 2, 'x')", "he"),
        ("RPAD(NULL, 2, 'x')", "NULL"),
        ("CHAR_LENGTH(LPAD('', 100000, 'ab'))", "100000"),
        ("LPAD('a', 2147483647, 'x')", "NULL"),
    ])
    .await;
}

#[tokio::test]
async fn chr_and_predicates() {
    check(&[
        ("CHR(97)", "a"),
        ("CHR(353)", "a"),
        ("CHR(-1)", ""),
        ("CHAR_LENGTH(CHR(0))", "1"),
        ("CHR(NULL)", "NULL"),
        ("IS_ALPHA('abcÉ')", "true"),
        ("IS_ALPHA('ab1')", "false"),
        ("IS_ALPHA('')", "false"),
        ("IS_ALPHA(NULL)", "false"),
        ("IS_DIGIT('0123')", "true"),
        ("IS_DIGIT('1.5')", "false"),
        ("IS_DIGIT(NULL)", "false"),
        ("IS_DECIMAL('1.5')", "true"),
        ("IS_DECIMAL('-1e10')", "true"),
        ("IS_DECIMAL('1.5.5')", "false"),
        ("IS_DECIMAL('abc')", "false"),
        ("IS_DECIMAL('inf')", "false"),
        ("IS_DECIMAL('')", "false"),
        ("IS_DECIMAL(NULL)", "false"),
    ])
    .await;
}

#[tokio::test]
async fn base64_and_digests() {
    check(&[
        ("TO_BASE64('')", ""),
        ("TO_BASE64('a')", "YQ=="),
        ("TO_BASE64('ab')", "YWI="),
        ("TO_BASE64('abc')", "YWJj"),
        ("TO_BASE64(NULL)", "NULL"),
        ("FROM_BASE64('YQ==')", "a"),
        ("FROM_BASE64('YQ')", "a"),
        ("FROM_BASE64('YWJj')", "abc"),
        ("FROM_BASE64('')", ""),
        ("FROM_BASE64('!!!!')", "NULL"),
        ("FROM_BASE64('Y')", "NULL"),
        ("FROM_BASE64('YQ===')", "NULL"),
        ("FROM_BASE64(TO_BASE64('héllo wörld'))", "héllo wörld"),
        ("SHA2('a', 100)", "NULL"),
        ("SHA2('a', NULL)", "NULL"),
        ("SHA256(NULL)", "NULL"),
        ("SHA512('')", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
        ("SHA384('') = SHA2('', 384)", "true"),
    ])
    .await;
}

#[tokio::test]
async fn native_string_functions_match_flink() {
    // Each name resolves (via DataFusion) to Flink's result.
    check(&[
        ("CHARACTER_LENGTH('héllo')", "5"),
        ("RTRIM('a  ')", "a"),
        ("TRIM('  a ')", "a"),
        ("REPEAT('ab', -1)", ""),
        ("ASCII('')", "0"),
        ("INITCAP('hello wORLD')", "Hello World"),
    ])
    .await;
}

#[tokio::test]
async fn long_strings() {
    let n = eval("CHAR_LENGTH(REGEXP_REPLACE(REPEAT('ab', 50000), 'b', 'cc'))").await;
    assert_eq!(n, "150000");
    assert_eq!(
        eval("SPLIT_INDEX(REPEAT('a/', 50000), '/', 49999)").await,
        "a"
    );
    assert_eq!(
        eval("CHAR_LENGTH(SUBSTRING(REPEAT('é', 100000), 50000))").await,
        "50001"
    );
}

//! Regular-expression functions, including invalid patterns and groups.

use super::check;

#[tokio::test]
async fn regexp_extract() {
    check(&[
        ("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 2)", "bar"),
        ("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 1)", "the"),
        (
            "REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 0)",
            "foothebar",
        ),
        ("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)')", "foothebar"),
        ("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 3)", "NULL"),
        ("REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', -1)", "NULL"),
        (
            "REGEXP_EXTRACT('foothebar', 'foo(.*?)(bar)', 9223372036854775807)",
            "NULL",
        ),
        ("REGEXP_EXTRACT('abc', 'x')", "NULL"),
        ("REGEXP_EXTRACT('abc', '(x)?b', 1)", "NULL"),
        ("REGEXP_EXTRACT('abc', '(')", "NULL"),
        ("REGEXP_EXTRACT('abc', '(?<=a)b')", "NULL"),
        ("REGEXP_EXTRACT(NULL, 'a')", "NULL"),
        ("REGEXP_EXTRACT('a', NULL)", "NULL"),
        ("REGEXP_EXTRACT('a', 'a', NULL)", "NULL"),
        ("REGEXP_EXTRACT('', '')", ""),
        ("REGEXP_EXTRACT('x=1&y=2', 'y=([0-9]+)', 1)", "2"),
        ("REGEXP_EXTRACT('héllo', 'h(.)l', 1)", "é"),
        ("REGEXP_SUBSTR('ab12cd', '[0-9]+')", "12"),
    ])
    .await;
}

#[tokio::test]
async fn regexp_replace_java_semantics() {
    check(&[
        ("REGEXP_REPLACE('foobar', 'oo|ar', '')", "fb"),
        ("REGEXP_REPLACE('aaa', 'a', 'b')", "bbb"),
        (
            "REGEXP_REPLACE('2020-01-02', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1')",
            "02/01/2020",
        ),
        ("REGEXP_REPLACE('ab', '(a)', '$1$1')", "aab"),
        ("REGEXP_REPLACE('ab', '(a)', '$10')", "a0b"),
        ("REGEXP_REPLACE('ab', '(a)', '\\$1')", "$1b"),
        ("REGEXP_REPLACE('ab', '(?P<x>a)', '${x}!')", "a!b"),
        ("REGEXP_REPLACE('ab', '(a)', '$2')", "NULL"),
        ("REGEXP_REPLACE('ab', 'a', '$')", "NULL"),
        ("REGEXP_REPLACE('ab', '[', 'x')", "NULL"),
        ("REGEXP_REPLACE('abc', '', '-')", "-a-b-c-"),
        ("REGEXP_REPLACE('abc', 'z', '-')", "abc"),
        ("REGEXP_REPLACE(NULL, 'a', 'b')", "NULL"),
        ("REGEXP_REPLACE('a', NULL, 'b')", "NULL"),
        ("REGEXP_REPLACE('a', 'a', NULL)", "NULL"),
    ])
    .await;
}

#[tokio::test]
async fn regexp_predicate() {
    check(&[
        ("REGEXP('abc123', '[0-9]+')", "true"),
        ("REGEXP('abc', '^b')", "false"),
        ("REGEXP('abc', '')", "true"),
        ("REGEXP('abc', '(')", "NULL"),
        ("REGEXP('abc', 'a{1000000}')", "NULL"),
        ("REGEXP(NULL, 'a')", "NULL"),
    ])
    .await;
}

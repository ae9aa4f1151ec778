//! Date/time functions: extractors, Java-pattern formatting and parsing.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use super::{check, eval, type_of};

const TS: &str = "TIMESTAMP '2020-03-05 14:07:09.123'";

#[tokio::test]
async fn extractors() {
    let cases: Vec<(String, &str)> = [
        ("YEAR", "2020"),
        ("QUARTER", "1"),
        ("MONTH", "3"),
        ("WEEK", "10"),
        ("DAYOFYEAR", "65"),
        ("DAYOFMONTH", "5"),
        ("DAYOFWEEK", "5"),
        ("HOUR", "14"),
        ("MINUTE", "7"),
        ("SECOND", "9"),
    ]
    .iter()
    .map(|(f, v)| (format!("{f}({TS})"), *v))
    .collect();
    check(
        &cases
            .iter()
            .map(|(q, v)| (q.as_str(), *v))
            .collect::<Vec<_>>(),
    )
    .await;
    check(&[
        ("DAYOFWEEK(DATE '2020-03-08')", "1"),
        ("DAYOFWEEK(DATE '2020-03-07')", "7"),
        ("YEAR(DATE '1969-12-31')", "1969"),
        ("HOUR(CAST(NULL AS TIMESTAMP))", "NULL"),
        ("HOUR(NULL)", "NULL"),
        ("HOUR(TO_TIMESTAMP_LTZ(1583417229, 0))", "14"),
        ("HOUR(arrow_cast(TIMESTAMP '2020-03-05 14:07:09', 'Timestamp(Second, Some(\"+08:00\"))'))", "6"),
        ("MINUTE(arrow_cast(TIMESTAMP '2020-03-05 14:07:09', 'Timestamp(Nanosecond, None)'))", "7"),
        ("WEEK(DATE '2021-01-01')", "53"),
    ])
    .await;
    assert_eq!(type_of(&format!("HOUR({TS})")).await, DataType::Int64);
    assert!(
        super::ctx().sql("SELECT HOUR('2020-01-01')").await.is_err(),
        "strings are not timestamps"
    );
}

#[tokio::test]
async fn date_format() {
    check(&[
        (
            &format!("DATE_FORMAT({TS}, 'yyyy-MM-dd HH:mm:ss')"),
            "2020-03-05 14:07:09",
        ),
        (
            &format!("DATE_FORMAT({TS}, 'yyyy-MM-dd''T''HH:mm:ss.SSSXXX')"),
            "2020-03-05T14:07:09.123Z",
        ),
        (
            &format!("DATE_FORMAT({TS}, 'EEE, d MMM yy hh:mm a')"),
            "Thu, 5 Mar 20 02:07 PM",
        ),
        (&format!("DATE_FORMAT({TS}, 'EEEE MMMM')"), "Thursday March"),
        (&format!("DATE_FORMAT({TS}, 'yyyy-bb')"), "NULL"),
        (&format!("DATE_FORMAT({TS}, '')"), ""),
        (&format!("DATE_FORMAT({TS}, NULL)"), "NULL"),
        ("DATE_FORMAT('2020-03-05 14:07:09', 'HH:mm')", "14:07"),
        (
            "DATE_FORMAT('2020-03-05T14:07:09Z', 'dd/MM/yyyy')",
            "05/03/2020",
        ),
        ("DATE_FORMAT('2020-03-05T14:07:09+01:00', 'HH')", "13"),
        ("DATE_FORMAT('not a date', 'HH')", "NULL"),
        ("DATE_FORMAT(DATE '2020-03-05', 'yyyyMMdd')", "20200305"),
        (
            "DATE_FORMAT(TO_TIMESTAMP_LTZ(0, 3), 'yyyy-MM-dd HH:mm:ss.SSS')",
            "1970-01-01 00:00:00.000",
        ),
        ("DATE_FORMAT(NULL, 'yyyy')", "NULL"),
    ])
    .await;
    assert_eq!(
        type_of(&format!("DATE_FORMAT({TS}, 'yyyy')")).await,
        DataType::Utf8
    );
}

#[tokio::test]
async fn from_unixtime() {
    check(&[
        ("FROM_UNIXTIME(44)", "1970-01-01 00:00:44"),
        (
            "FROM_UNIXTIME(1583417229, 'yyyy/MM/dd HH')",
            "2020/03/05 14",
        ),
        ("FROM_UNIXTIME(-1)", "1969-12-31 23:59:59"),
        ("FROM_UNIXTIME(9223372036854775807)", "NULL"),
        ("FROM_UNIXTIME(0, 'q')", "NULL"),
        ("FROM_UNIXTIME(NULL)", "NULL"),
    ])
    .await;
}

#[tokio::test]
async fn to_timestamp() {
    check(&[
        ("TO_TIMESTAMP('2020-03-05 14:07:09')", "2020-03-05 14:07:09"),
        (
            "TO_TIMESTAMP('2020-03-05 14:07:09.123456')",
            "2020-03-05 14:07:09.123",
        ),
        ("TO_TIMESTAMP('2020-03-05T14:07:09')", "2020-03-05 14:07:09"),
        (
            "TO_TIMESTAMP('2020-03-05T14:07:09Z')",
            "2020-03-05 14:07:09",
        ),
        ("TO_TIMESTAMP('2020-03-05')", "2020-03-05 00:00:00"),
        (
            "TO_TIMESTAMP('05/03/2020 14:07', 'dd/MM/yyyy HH:mm')",
            "2020-03-05 14:07:00",
        ),
        (
            "TO_TIMESTAMP('20200305140709', 'yyyyMMddHHmmss')",
            "2020-03-05 14:07:09",
        ),
        (
            "TO_TIMESTAMP('05/Mar/2020:14:07:09 +0100', 'dd/MMM/yyyy:HH:mm:ss Z')",
            "2020-03-05 13:07:09",
        ),
        ("TO_TIMESTAMP('garbage')", "NULL"),
        ("TO_TIMESTAMP('')", "NULL"),
        ("TO_TIMESTAMP('2020-02-30 00:00:00')", "NULL"),
        ("TO_TIMESTAMP('2020-03-05', 'yyyy-bb')", "NULL"),
        ("TO_TIMESTAMP('2020-03-05', '''')", "NULL"),
        ("TO_TIMESTAMP(NULL)", "NULL"),
        ("TO_TIMESTAMP('2020-03-05', NULL)", "NULL"),
    ])
    .await;
    assert_eq!(
        type_of("TO_TIMESTAMP('x')").await,
        DataType::Timestamp(TimeUnit::Millisecond, None)
    );
}

#[tokio::test]
async fn to_timestamp_ltz() {
    check(&[
        ("TO_TIMESTAMP_LTZ(1583417229, 0)", "2020-03-05 14:07:09"),
        (
            "TO_TIMESTAMP_LTZ(1583417229123, 3)",
            "2020-03-05 14:07:09.123",
        ),
        ("TO_TIMESTAMP_LTZ(1583417229123)", "2020-03-05 14:07:09.123"),
        (
            "TO_TIMESTAMP_LTZ(1583417229.5, 0)",
            "2020-03-05 14:07:09.500",
        ),
        (
            "TO_TIMESTAMP_LTZ(1583417229123456, 6)",
            "2020-03-05 14:07:09.123",
        ),
        ("TO_TIMESTAMP_LTZ(1, 2)", "NULL"),
        ("TO_TIMESTAMP_LTZ(9223372036854775807, 0)", "NULL"),
        ("TO_TIMESTAMP_LTZ(NULL, 0)", "NULL"),
        (
            "TO_TIMESTAMP_LTZ('2020-03-05 14:07:09')",
            "2020-03-05 14:07:09",
        ),
        (
            "TO_TIMESTAMP_LTZ('05.03.2020', 'dd.MM.yyyy')",
            "2020-03-05 00:00:00",
        ),
    ])
    .await;
    let utc = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    assert_eq!(type_of("TO_TIMESTAMP_LTZ(0, 3)").await, utc);
}

#[tokio::test]
async fn to_date_and_unix_timestamp() {
    check(&[
        ("TO_DATE('2020-03-05')", "2020-03-05"),
        ("TO_DATE('05/03/2020', 'dd/MM/yyyy')", "2020-03-05"),
        ("TO_DATE('1969-12-31')", "1969-12-31"),
        ("TO_DATE('nope')", "NULL"),
        ("TO_DATE(NULL)", "NULL"),
        ("UNIX_TIMESTAMP('1970-01-01 00:01:40')", "100"),
        (
            "UNIX_TIMESTAMP('1970-01-01 08:00:01.001 +0800', 'yyyy-MM-dd HH:mm:ss.SSS X')",
            "1",
        ),
        ("UNIX_TIMESTAMP('05/03/2020', 'dd/MM/yyyy')", "1583366400"),
        ("UNIX_TIMESTAMP('garbage')", "-9223372036854775808"),
        ("UNIX_TIMESTAMP(NULL)", "NULL"),
    ])
    .await;
    let now: i64 = eval("UNIX_TIMESTAMP()").await.parse().expect("seconds");
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    assert!((now - wall as i64).abs() < 60, "{now} vs {wall}");
    assert_eq!(type_of("UNIX_TIMESTAMP()").await, DataType::Int64);
}

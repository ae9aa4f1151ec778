//! Math functions: Flink's remainder, logarithms, truncation and random numbers.

use datafusion::arrow::datatypes::DataType;

use super::{check, eval, type_of};

#[tokio::test]
async fn modulo() {
    check(&[
        ("MOD(7, 3)", "1"),
        ("MOD(-7, 3)", "-1"),
        ("MOD(7, -3)", "1"),
        ("MOD(7, 0)", "NULL"),
        ("MOD(CAST(-9223372036854775807 AS BIGINT) - 1, -1)", "0"),
        ("MOD(NULL, 3)", "NULL"),
        ("MOD(7, NULL)", "NULL"),
        ("MOD(7.5, 2)", "1.5"),
        ("MOD(-7.5, 2)", "-1.5"),
        ("MOD(7.5, 0)", "NULL"),
        ("MOD(CAST(7.5 AS DOUBLE), 2)", "1.5"),
        ("MOD(CAST(7.5 AS DOUBLE), 0)", "NULL"),
        ("MOD(CAST(-7 AS INT), CAST(3 AS SMALLINT))", "-1"),
    ])
    .await;
    assert_eq!(
        type_of("MOD(CAST(7 AS BIGINT), CAST(3 AS INT))").await,
        DataType::Int32
    );
    assert_eq!(
        type_of("MOD(CAST(7 AS INT), CAST(3 AS BIGINT))").await,
        DataType::Int64
    );
    assert_eq!(
        type_of("MOD(CAST(7 AS DOUBLE), 3)").await,
        DataType::Float64
    );
}

#[tokio::test]
async fn truncate() {
    check(&[
        ("TRUNCATE(CAST(42.345 AS DOUBLE), 2)", "42.34"),
        ("TRUNCATE(CAST(-42.345 AS DOUBLE), 2)", "-42.34"),
        ("TRUNCATE(CAST(42.345 AS DOUBLE))", "42.0"),
        ("TRUNCATE(CAST(42.345 AS DOUBLE), -1)", "40.0"),
        ("TRUNCATE(CAST(42.345 AS DOUBLE), 1000)", "42.345"),
        ("TRUNCATE(CAST(42.345 AS DOUBLE), -1000)", "0.0"),
        ("TRUNCATE(42.345, 2)", "42.340"),
        ("TRUNCATE(-42.345, 1)", "-42.300"),
        ("TRUNCATE(42.345, -1)", "40.000"),
        ("TRUNCATE(42.345, -100)", "0.000"),
        ("TRUNCATE(1234, -2)", "1200"),
        ("TRUNCATE(-1234, -2)", "-1200"),
        ("TRUNCATE(1234, -100)", "0"),
        ("TRUNCATE(1234, 2)", "1234"),
        ("TRUNCATE(NULL, 2)", "NULL"),
        ("TRUNCATE(1.5, NULL)", "NULL"),
    ])
    .await;
}

#[tokio::test]
async fn logs_roots_constants() {
    check(&[
        ("LOG(1)", "0.0"),
        ("LOG(2, 8)", "3.0"),
        ("LOG(0)", "-inf"),
        ("LOG(-1)", "NaN"),
        ("LOG(NULL)", "NULL"),
        ("SQRT(16)", "4.0"),
        ("SQRT(2.25)", "1.5"),
        ("SQRT(-1)", "NaN"),
        ("E()", "2.718281828459045"),
        ("SIGN(-3)", "-1.0"),
        ("CEILING(CAST(2.1 AS DOUBLE))", "3.0"),
    ])
    .await;
}

#[tokio::test]
async fn random_numbers() {
    for _ in 0..20 {
        let r: f64 = eval("RAND()").await.parse().expect("a double");
        assert!((0.0..1.0).contains(&r), "{r}");
        let i: i64 = eval("RAND_INTEGER(10)").await.parse().expect("an int");
        assert!((0..10).contains(&i), "{i}");
    }
    // The same seed gives the same sequence in a fresh session.
    assert_eq!(eval("RAND(42)").await, eval("RAND(42)").await);
    assert_eq!(
        eval("RAND_INTEGER(7, 1000)").await,
        eval("RAND_INTEGER(7, 1000)").await
    );
    check(&[
        ("RAND_INTEGER(0)", "NULL"),
        ("RAND_INTEGER(-5)", "NULL"),
        ("RAND_INTEGER(NULL)", "NULL"),
    ])
    .await;
    assert_eq!(type_of("RAND_INTEGER(5)").await, DataType::Int32);
}

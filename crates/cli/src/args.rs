//! Value parsers shared by the commands' flags, for errors that say what
//! a value must be (clap's own range check prints the type's maximum:
//! `0 is not in 1..18446744073709551615`).

/// A whole number of at least 1: a count of iterations, Gaussians or
/// views.
///
/// ```
/// use chainrule_cli::args::at_least_one;
/// assert_eq!(at_least_one::<u32>("12"), Ok(12));
/// assert_eq!(at_least_one::<u64>("0"), Err("must be at least 1".to_string()));
/// assert!(at_least_one::<u32>("-3").unwrap_err().contains("whole number"));
/// ```
pub fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    let v: T = s
        .trim()
        .parse()
        .map_err(|_| "expected a whole number of at least 1".to_string())?;
    if v < T::from(1) {
        return Err("must be at least 1".into());
    }
    Ok(v)
}

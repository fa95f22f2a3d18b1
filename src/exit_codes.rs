//! Process exit codes: 0 success, 1 a check found a problem, 2 usage or operational error
//! (argument errors included).

use crate::error::Error;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything worked and everything checked is intact.
    Success,
    /// A check found missing, corrupt or hostile data.
    Problem,
    /// Bad usage, configuration or an operational failure.
    Error,
}

impl ExitCode {
    /// The exit code for a command error.
    pub fn for_error(err: &Error) -> Self {
        if err.is_data_problem() {
            ExitCode::Problem
        } else {
            ExitCode::Error
        }
    }
}

impl From<ExitCode> for i32 {
    fn from(code: ExitCode) -> i32 {
        match code {
            ExitCode::Success => 0,
            ExitCode::Problem => 1,
            ExitCode::Error => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(i32::from(ExitCode::Success), 0);
        assert_eq!(i32::from(ExitCode::Problem), 1);
        assert_eq!(i32::from(ExitCode::Error), 2);
        let corrupt = Error::Corrupt {
            path: "a".into(),
            detail: "x".into(),
        };
        assert_eq!(ExitCode::for_error(&corrupt), ExitCode::Problem);
        let usage = Error::InvalidStrategy { name: "..".into() };
        assert_eq!(ExitCode::for_error(&usage), ExitCode::Error);
    }
}

//! A data or log directory that cannot be used ends the run with a typed error that says
//! what and where, before any task runs; a log directory that does not exist is made.

use pipewright::Error;
use pipewright::prelude::*;

#[task]
fn one() -> u8 {
    1
}

#[test]
fn unusable_directories_are_errors_that_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline! {
        name = "storage";
        let a = one();
    };

    // A data directory that is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = Runner::new(&file).run(&p).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("cannot create the data directory `{}`", file.display())
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");

    // A data directory on a file system that cannot be written, even by root.
    let err = Runner::new("/proc/pipewright-data").run(&p).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot create the data directory `/proc/pipewright-data`"),
        "{err}"
    );

    // A log directory that is a file; the data directory stays usable.
    let data = dir.path().join("data");
    let err = Runner::new(&data).log_dir(&file).run(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot create the log directory `{}`", file.display())
    );

    // A log directory that does not exist yet is made.
    let logs = dir.path().join("deep/down/logs");
    let run = Runner::new(&data).log_dir(&logs).run(&p).unwrap();
    assert!(run.succeeded());
    assert!(run.run_dir().unwrap().starts_with(&logs));
}

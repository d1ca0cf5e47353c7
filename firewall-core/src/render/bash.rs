//! The bash script (STUB: being written).
use crate::model::Model;

/// The script.
pub fn script(_model: &Model, _ipv4: &str, _ipv6: &str) -> String {
    String::from("#!/bin/bash\n")
}

//! Palisade's genesis file format, its validation and the initial state it
//! describes (issue 4).

#![forbid(unsafe_code)]

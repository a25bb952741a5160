//! Key files and the home layout.

use std::os::unix::fs::PermissionsExt;

use palisade_node::home::{read_key, read_key_with, write_key, Home, KeyFileError, KeyPermissions};
use palisade_types::Keypair;

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_key_file_group_or_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    let key = Keypair::from_seed([7; 32]);
    write_key(&path, &key).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
    for mode in [0o640, 0o604, 0o644, 0o660, 0o610] {
        chmod(&path, mode);
        let err = read_key(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Insecure { mode: m, .. } if m == mode),
            "mode {mode:o}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display()))
                && text.contains("--allow-insecure-key-permissions"),
            "{text}"
        );
        // Accepted only when asked for explicitly.
        let k = read_key_with(&path, KeyPermissions::AllowInsecure).unwrap();
        assert_eq!(k.public_key(), key.public_key());
    }
    chmod(&path, 0o400);
    assert!(read_key(&path).is_ok());
}

#[test]
fn a_home_reads_its_keys_with_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    assert!(home.validator_key().unwrap().is_none());
    write_key(&home.validator_key_file(), &Keypair::from_seed([1; 32])).unwrap();
    write_key(&home.node_key_file(), &Keypair::from_seed([2; 32])).unwrap();
    assert!(home.validator_key().unwrap().is_some());
    chmod(&home.validator_key_file(), 0o644);
    assert!(matches!(
        home.validator_key(),
        Err(KeyFileError::Insecure { .. })
    ));
    let lax = home
        .clone()
        .with_key_permissions(KeyPermissions::AllowInsecure);
    assert!(lax.validator_key().unwrap().is_some());
    chmod(&home.node_key_file(), 0o640);
    assert!(home.node_key().is_err());
    assert!(lax.node_key().is_ok());
}

#[test]
fn the_signer_state_lives_beside_the_validator_key_outside_data() {
    let home = Home::new("/h");
    assert_eq!(
        home.signer_state_file().parent(),
        home.validator_key_file().parent()
    );
    assert!(!home.signer_state_file().starts_with(home.data_dir()));
    assert!(!home.admin_key_file().starts_with(home.config_dir()));
    assert!(!home.admin_key_file().starts_with(home.data_dir()));
}

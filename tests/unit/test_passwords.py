"""Members' passwords (`core.passwords`): the rule a new one must meet, and argon2id hashing and checking."""

from __future__ import annotations

import pytest
from argon2 import Parameters, PasswordHasher, Type, extract_parameters, profiles
from argon2.exceptions import VerifyMismatchError

from farebox.core.passwords import PasswordHashes, clean_password, default_parameters
from farebox.errors import ValidationFailed

CHEAP = PasswordHashes(profiles.CHEAPEST)
EMAIL = "ada@acme.test"
PASSWORD = "correct horse battery"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "must be at least 12 characters"),
        ("eleven-char", "must be at least 12 characters"),
        ("x" * 1_025, "must be at most 1,024 characters"),
        (EMAIL, "must not be the member's e-mail address"),
        (" ADA@Acme.Test ", "must not be the member's e-mail address"),
    ],
)
def test_a_password_that_breaks_the_rule_is_refused_naming_the_field_not_the_password(
    password: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        clean_password(password, email=EMAIL)
    assert refused.value.status == 422
    assert refused.value.details == [{"loc": "password", "message": message}]
    assert refused.value.message == f"password: {message}"
    assert password.strip() == "" or password.strip() not in refused.value.message


@pytest.mark.parametrize("password", ["twelve chars", "x" * 1_024, "ada@acme.test.", "ádá@ácmé.tést"])
def test_a_password_that_meets_the_rule_is_kept_as_typed(password: str) -> None:
    assert clean_password(password, email=EMAIL) == password


def test_a_password_is_normalised_so_that_either_way_of_typing_an_accent_is_the_same_password() -> None:
    composed, decomposed = "caf\u00e9-au-lait-42", "cafe\u0301-au-lait-42"
    assert composed != decomposed
    stored = CHEAP.hash(clean_password(composed, email=EMAIL))
    assert CHEAP.matches(stored, clean_password(decomposed, email=EMAIL))
    # NFKC counts the composed form: eleven characters typed as twelve code points are still too short.
    with pytest.raises(ValidationFailed):
        clean_password("cafe\u0301-latte", email=EMAIL)


def test_a_hash_is_argon2id_with_a_fresh_salt_and_checks_only_its_password() -> None:
    first, second = CHEAP.hash("correct horse battery"), CHEAP.hash("correct horse battery")
    assert first.startswith("$argon2id$v=19$m=8,t=1,p=1$") and first != second
    assert "correct horse battery" not in first
    assert CHEAP.matches(first, "correct horse battery") and CHEAP.matches(second, "correct horse battery")
    assert not CHEAP.matches(first, "correct horse battery!")
    assert not CHEAP.matches("not a hash", "correct horse battery")
    assert not CHEAP.matches("$argon2id$v=19$m=8,t=1,p=1$broken", "correct horse battery")


def test_the_default_parameters_are_rfc_9106s_second_recommendation() -> None:
    rfc_9106 = Parameters(
        type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=3, memory_cost=64 * 1024, parallelism=4
    )
    assert default_parameters() == rfc_9106
    assert extract_parameters(PasswordHashes().decoy) == rfc_9106, "hashes made without parameters use them"


def test_a_hash_made_with_other_parameters_needs_rehashing_and_still_verifies() -> None:
    current = PasswordHashes(
        Parameters(Type.ID, 19, salt_len=16, hash_len=32, time_cost=2, memory_cost=16, parallelism=1)
    )
    old = CHEAP.hash("correct horse battery")
    assert current.needs_rehash(old) and current.matches(old, "correct horse battery")
    assert not current.needs_rehash(current.hash("correct horse battery"))


@pytest.mark.parametrize("parameters", [default_parameters(), profiles.CHEAPEST], ids=["default", "cheapest"])
def test_the_decoy_is_a_well_formed_hash_in_the_current_parameters(parameters: Parameters) -> None:
    """So that checking a password against it costs what a real check costs."""
    hashes = PasswordHashes(parameters)
    assert extract_parameters(hashes.decoy) == parameters and not hashes.needs_rehash(hashes.decoy)
    assert hashes.decoy != PasswordHashes(parameters).decoy


def test_a_sign_in_without_a_hash_runs_a_whole_check_against_the_decoy_and_nothing_matches_it() -> None:
    decoy = PasswordHashes(profiles.CHEAPEST).decoy
    for password in ("", "password", PASSWORD):
        with pytest.raises(VerifyMismatchError):  # argon2 ran and compared, rather than refusing the hash
            PasswordHasher.from_parameters(profiles.CHEAPEST).verify(decoy, password)

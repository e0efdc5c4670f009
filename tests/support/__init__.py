"""Test helpers and fakes (never imported by src/)."""

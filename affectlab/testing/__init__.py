"""Test helpers shipped with affectlab: an offline Hugging Face Hub emulator (`hub_emulator`)."""

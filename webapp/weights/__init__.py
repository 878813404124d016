"""Weight files behind gates: attached with their checksums, served by signed per-user links,
by personal tokens, and through the part of the Hugging Face Hub API that downloads."""

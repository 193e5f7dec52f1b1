-- A stack's secret env: {name: base64(nonce | ciphertext | tag)}, sealed under the server's
-- key (src/secrets.rs); never a value in clear. Kept in step on both backends.
ALTER TABLE stacks ADD COLUMN secret_env TEXT NOT NULL DEFAULT '{}';

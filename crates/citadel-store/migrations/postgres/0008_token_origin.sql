-- Who a token belongs to. `created_by` is the token that minted it (NULL
-- for tokens made by `citadel admin` or a login); `person` is the user or
-- root token it descends from, so every token one person mints — and every
-- token those mint — counts as that person (four-eyes review compares it).
ALTER TABLE tokens ADD COLUMN created_by TEXT;
ALTER TABLE tokens ADD COLUMN person TEXT;
UPDATE tokens SET person = COALESCE(user_id, id);
CREATE INDEX tokens_person ON tokens(person);

-- A rotation links its two keys: the old key names its successor
-- (`replaced_by`), the new one its predecessor (`replaces`). Set in the
-- rotation's transaction; an old key with a successor cannot be rotated
-- again (the rotation's UPDATE requires `replaced_by IS NULL`). Keys rotated
-- before this migration have no link.
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
ALTER TABLE api_keys ADD COLUMN replaces TEXT;

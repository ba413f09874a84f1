-- Tell every listening service instance that events were appended, so live
-- subscriptions on other instances learn of them at once (they then read the
-- global stream in its safe order; the notification carries nothing).
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portal_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

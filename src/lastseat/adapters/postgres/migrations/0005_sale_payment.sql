-- lastseat schema v5: a sale's payment as one server-side step that raises when the wallet
-- cannot pay. The sale's rows and its COMMIT then travel to the server in one flight (the
-- claim's row lock lives one round trip plus the commit, see adapters/postgres/sales.py):
-- an unpaid sale must abort the transaction by itself, since no one is left to read a row
-- count between the debit and the COMMIT.
--
-- SQLSTATEs (class LS, lastseat's own), each with the facts as JSON in DETAIL
-- ({"account", "amount", "currency", "holds"}: "holds" is the account's currency, or null):
--   LS404  the paying account does not exist
--   LS409  it holds another currency
--   LS402  it holds less than the amount
CREATE FUNCTION lastseat_pay(
    p_transfer_id TEXT, p_kind TEXT, p_source TEXT, p_destination TEXT,
    p_amount BIGINT, p_currency TEXT, p_order_id TEXT
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    held_currency TEXT;
    facts TEXT;
BEGIN
    UPDATE accounts SET balance_minor = balance_minor - p_amount
        WHERE account_id = p_source AND currency = p_currency AND balance_minor >= p_amount;
    IF NOT FOUND THEN
        SELECT currency INTO held_currency FROM accounts WHERE account_id = p_source;
        facts := json_build_object('account', p_source, 'amount', p_amount,
                                   'currency', p_currency, 'holds', held_currency)::text;
        IF held_currency IS NULL THEN
            RAISE EXCEPTION 'no account %', p_source USING ERRCODE = 'LS404', DETAIL = facts;
        ELSIF held_currency <> p_currency THEN
            RAISE EXCEPTION 'account % holds %', p_source, held_currency
                USING ERRCODE = 'LS409', DETAIL = facts;
        END IF;
        RAISE EXCEPTION 'account % is short', p_source USING ERRCODE = 'LS402', DETAIL = facts;
    END IF;
    INSERT INTO transfers (transfer_id, kind, source, destination, amount_minor, currency,
                           order_id, created_at_us)
        VALUES (p_transfer_id, p_kind, p_source, p_destination, p_amount, p_currency,
                p_order_id, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    INSERT INTO ledger_entries (transfer_id, account_id, amount_minor)
        VALUES (p_transfer_id, p_source, -p_amount), (p_transfer_id, p_destination, p_amount);
END
$$;

-- A check that aborts the transaction when `ok` is false, for a statement queued behind a
-- sale whose row count no one will read before the COMMIT (the request's stored answer:
-- LS410, the attempt is over).
CREATE FUNCTION lastseat_require(ok BOOLEAN, state TEXT, message TEXT)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message;
    END IF;
END
$$;

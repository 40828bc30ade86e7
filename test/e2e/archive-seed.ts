/**
 * Seed rows for the message archive, written straight into ejabberd's `archive`
 * table as ejabberd itself writes them (new_sql_schema): `rows` chat messages spread
 * evenly over the last `days` days, in time order (so ids grow with time, as in a
 * real archive), 4 in 5 in `domain` and 1 in 5 in `other`, about one a day from
 * alice so that her message archive (MAM) has something in every month.
 */
export function seedArchiveSql(o: {rows: number; days: number; domain: string; other: string}): string {
  const span = BigInt(o.days) * 86_400_000_000n
  const stride = Math.max(1, Math.floor(o.rows / o.days))
  return `INSERT INTO public.archive (username, server_host, timestamp, peer, bare_peer, xml, txt, kind, nick, created_at)
SELECT u, h, ts, p || '/desk', p,
  '<message xmlns="jabber:client" xml:lang="en" to="' || p || '/desk" from="' || u || '@' || h || '/phone" type="chat" id="seed-' || g || '"><body>' || body || '</body></message>',
  body, 'chat', '', to_timestamp(ts / 1000000.0) AT TIME ZONE 'UTC'
FROM (SELECT g, ts,
        CASE WHEN g % 5 = 0 THEN '${o.other}' ELSE '${o.domain}' END AS h,
        CASE WHEN g % ${stride} = 1 AND g % 5 <> 0 THEN 'alice' ELSE 'user' || (g % 97) END AS u,
        'user' || ((g * 7) % 97) || '@' || CASE WHEN g % 5 = 0 THEN '${o.other}' ELSE '${o.domain}' END AS p,
        'seeded message ' || g || ' about ' || md5(g::text) AS body
      FROM (SELECT g, (extract(epoch FROM now()) * 1000000)::bigint - ${span} + g::bigint * ${span / BigInt(o.rows)} AS ts FROM generate_series(1, ${o.rows}) g) t) s
ORDER BY ts;
`
}

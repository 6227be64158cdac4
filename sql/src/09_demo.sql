-- recsys SQL source: demo -- the embedded demo shop (the Makefile assembles sql/src/*.sql into the install script)

------------------------------------------------------------------------------
-- The embedded demo shop
------------------------------------------------------------------------------

-- Uniform [0, 1) from (seed, stream, key): a hash, so the generated shop does
-- not depend on the order in which a plan visits rows.
CREATE FUNCTION recsys.demo_uniform(seed bigint, stream integer, key bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ((pg_catalog.hashint8extended(key * 1000003 + stream, seed) >> 11) & 9007199254740991)::float8
           / 9007199254740992.0
$$;
COMMENT ON FUNCTION recsys.demo_uniform(bigint, integer, bigint) IS 'deterministic uniform number in [0, 1) from a seed, a stream number and a key; used by recsys.demo_shop';

CREATE FUNCTION recsys.demo_shop(target_schema name DEFAULT 'shop', customers integer DEFAULT 3000,
                                 seed bigint DEFAULT 42, register boolean DEFAULT true)
RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    counts jsonb;
BEGIN
    IF customers IS NULL OR customers < 50 OR customers > 1000000 THEN
        RAISE EXCEPTION 'customers must be between 50 and 1000000, got %', coalesce(customers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF target_schema IS NULL OR seed IS NULL OR register IS NULL THEN
        RAISE EXCEPTION 'target_schema, seed and register must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- a fresh schema: never touches existing shop data (fails if it exists)
    EXECUTE pg_catalog.format('CREATE SCHEMA %I', target_schema);
    PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(target_schema) || ', pg_catalog, pg_temp', true);

    -- 8 departments: an anchor product and 4 complements, 3 brands x 2 lines each
    CREATE TABLE departments (dept integer PRIMARY KEY, anchor text, base_price numeric,
                              brands text[], complements text[], complement_prices numeric[]);
    INSERT INTO departments VALUES
      (1, 'Smartphone', 699, '{Nova,Zenit,Orca}', '{Phone Case,Screen Protector,USB-C Charger,Wireless Earbuds}', '{19,12,25,89}'),
      (2, 'Laptop', 1199, '{Aero,Vertex,Lumen}', '{Laptop Sleeve,Wireless Mouse,USB-C Hub,Keyboard}', '{29,25,45,69}'),
      (3, 'Mirrorless Camera', 899, '{Kito,Prisma,Halden}', '{Memory Card,Tripod,Camera Bag,Lens Cleaning Kit}', '{29,49,59,15}'),
      (4, 'Espresso Machine', 499, '{Brava,Milo,Crema}', '{Coffee Beans,Milk Frother,Ceramic Mug,Descaler}', '{14,39,12,9}'),
      (5, 'Running Shoes', 129, '{Stride,Pace,Vela}', '{Running Socks,Water Bottle,Sports Watch,Running Cap}', '{12,15,149,19}'),
      (6, 'Game Console', 449, '{Pixel,Arcadia,Nexo}', '{Controller,Gaming Headset,Game,Charging Dock}', '{59,79,49,29}'),
      (7, 'Stroller', 399, '{Bloom,Nido,Koala}', '{Diaper Bag,Rain Cover,Cup Holder,Baby Blanket}', '{49,25,12,29}'),
      (8, 'Chef Knife', 89, '{Forge,Sora,Tama}', '{Cutting Board,Knife Sharpener,Apron,Knife Block}', '{35,29,19,49}');
    COMMENT ON TABLE departments IS 'demo shop: departments, each an anchor product with four complements';

    -- product_id = 1000 + series * 5 + slot; series = (dept, brand, line); slot 0 is the anchor
    CREATE TABLE products (
        product_id bigint PRIMARY KEY,
        name       text NOT NULL,
        category   text NOT NULL,
        dept       integer NOT NULL,
        brand      text NOT NULL,
        line       text NOT NULL,
        price      numeric(10,2) NOT NULL,
        stock      integer NOT NULL,
        created_at timestamptz NOT NULL
    );
    INSERT INTO products
    SELECT 1000 + sr.series * 5 + slot.n,
           d.brands[sr.b] || ' ' || sr.line || ' ' || CASE slot.n WHEN 0 THEN d.anchor ELSE d.complements[slot.n] END,
           CASE slot.n WHEN 0 THEN d.anchor ELSE d.complements[slot.n] END,
           d.dept, d.brands[sr.b], sr.line,
           round((CASE slot.n WHEN 0 THEN d.base_price ELSE d.complement_prices[slot.n] END)
                 * (0.9 + 0.15 * sr.b) * (CASE sr.line WHEN 'Pro' THEN 1.5 ELSE 1 END)) - 0.01,
           CASE WHEN recsys.demo_uniform(seed, 1, sr.series * 5 + slot.n) < 0.08 THEN 0
                ELSE 1 + floor(recsys.demo_uniform(seed, 2, sr.series * 5 + slot.n) * 80)::int END,
           timestamptz '2026-01-01 00:00+00' + (sr.series * 5 + slot.n) * interval '1 day'
      FROM departments d
     CROSS JOIN LATERAL (SELECT (d.dept - 1) * 6 + (b - 1) * 2 + (l - 1) AS series, b,
                                CASE l WHEN 1 THEN 'Lite' ELSE 'Pro' END AS line
                           FROM generate_series(1, 3) b, generate_series(1, 2) l) sr
     CROSS JOIN generate_series(0, 4) AS slot(n);
    COMMENT ON TABLE products IS 'demo shop: products with names, categories, prices and stock';

    -- customers: one or two favourite departments, a favourite brand, a taste for Pro lines
    CREATE TABLE customers (
        customer_id bigint PRIMARY KEY,
        name        text NOT NULL,
        city        text NOT NULL,
        fav_dept    integer NOT NULL,
        second_dept integer,
        fav_brand   integer NOT NULL,
        pro_taste   double precision NOT NULL,
        signed_up   date NOT NULL
    );
    INSERT INTO customers
    SELECT c,
           (ARRAY['Ana','Ben','Chen','Dara','Eli','Fatima','Goran','Hana','Ivan','Jia','Kofi','Lena','Mateo','Nora',
                  'Omar','Priya','Quinn','Rosa','Sven','Tara','Umar','Vera','Wei','Yusuf','Zoe'])
             [1 + floor(recsys.demo_uniform(seed, 10, c) * 25)::int] || ' ' ||
           (ARRAY['Li','Smith','Garcia','Muller','Rossi','Kim','Novak','Silva','Sato','Khan','Dubois','Jansen',
                  'Popov','Nguyen','Okafor','Larsen'])[1 + floor(recsys.demo_uniform(seed, 11, c) * 16)::int],
           (ARRAY['Berlin','Lisbon','Shanghai','Austin','Lagos','Osaka','Toronto','Krakow'])
             [1 + floor(recsys.demo_uniform(seed, 12, c) * 8)::int],
           1 + floor(recsys.demo_uniform(seed, 13, c) * 8)::int,
           CASE WHEN recsys.demo_uniform(seed, 14, c) < 0.45 THEN 1 + floor(recsys.demo_uniform(seed, 15, c) * 8)::int END,
           1 + floor(recsys.demo_uniform(seed, 16, c) * 3)::int,
           recsys.demo_uniform(seed, 17, c),
           date '2026-01-01' + floor(recsys.demo_uniform(seed, 18, c) * 120)::int
      FROM generate_series(1, customers) c;
    COMMENT ON TABLE customers IS 'demo shop: customers with hidden tastes that drive their orders';

    -- orders: 1 to 8 per customer over May to October 2026; about 3% cancelled, 1% guest checkouts
    CREATE TABLE orders (
        order_id    bigint PRIMARY KEY,
        customer_id bigint,
        ordered_at  timestamptz NOT NULL,
        status      text NOT NULL,
        dept        integer NOT NULL,
        series      integer NOT NULL
    );
    INSERT INTO orders
    SELECT o.order_id,
           CASE WHEN recsys.demo_uniform(seed, 20, o.order_id) < 0.01 THEN NULL ELSE c.customer_id END,
           timestamptz '2026-05-01 08:00+00' + recsys.demo_uniform(seed, 21, o.order_id) * interval '183 days',
           CASE WHEN recsys.demo_uniform(seed, 22, o.order_id) < 0.03 THEN 'cancelled' ELSE 'completed' END,
           o.dept,
           (o.dept - 1) * 6
             + (CASE WHEN recsys.demo_uniform(seed, 24, o.order_id) < 0.7 THEN c.fav_brand
                     ELSE 1 + floor(recsys.demo_uniform(seed, 25, o.order_id) * 3)::int END - 1) * 2
             + (CASE WHEN recsys.demo_uniform(seed, 26, o.order_id) < c.pro_taste THEN 1 ELSE 0 END)
      FROM customers c
     CROSS JOIN LATERAL (
        SELECT c.customer_id * 10 + j AS order_id,
               CASE WHEN recsys.demo_uniform(seed, 23, c.customer_id * 10 + j) < 0.85
                    THEN CASE WHEN c.second_dept IS NOT NULL AND recsys.demo_uniform(seed, 27, c.customer_id * 10 + j) < 0.4
                              THEN c.second_dept ELSE c.fav_dept END
                    ELSE 1 + floor(recsys.demo_uniform(seed, 28, c.customer_id * 10 + j) * 8)::int END AS dept
          FROM generate_series(1, 1 + floor(recsys.demo_uniform(seed, 19, c.customer_id) ^ 2 * 8)::int) j
     ) o;
    COMMENT ON TABLE orders IS 'demo shop: orders (status completed or cancelled; customer_id NULL for guest checkout)';

    -- order lines: the anchor and its complements of the same series, sometimes another brand's
    -- complement; about 0.5% name a discontinued product and 1% are entered twice
    CREATE TABLE order_items (
        order_id   bigint NOT NULL,
        product_id bigint NOT NULL,
        quantity   integer NOT NULL,
        unit_price numeric(10,2)
    );
    INSERT INTO order_items
    SELECT l.order_id,
           CASE WHEN recsys.demo_uniform(seed, 30, l.key) < 0.005 THEN 99000 + l.slot ELSE l.product_id END,
           1 + (recsys.demo_uniform(seed, 31, l.key) < 0.1)::int,
           p.price
      FROM (SELECT o.order_id, o.order_id * 5 + s.slot AS key, s.slot,
                   1000 + CASE WHEN s.slot > 0 AND recsys.demo_uniform(seed, 32, o.order_id * 5 + s.slot) < 0.15
                               THEN (o.dept - 1) * 6 + floor(recsys.demo_uniform(seed, 33, o.order_id * 5 + s.slot) * 6)::int
                               ELSE o.series END * 5 + s.slot AS product_id
              FROM orders o
             CROSS JOIN generate_series(0, 4) AS s(slot)
             WHERE recsys.demo_uniform(seed, 34, o.order_id * 5 + s.slot) < (ARRAY[0.55, 0.5, 0.35, 0.3, 0.2])[s.slot + 1]
                OR (s.slot = 1 AND recsys.demo_uniform(seed, 34, o.order_id * 5) >= 0.55)) l
      LEFT JOIN products p ON p.product_id = l.product_id;
    INSERT INTO order_items
    SELECT * FROM order_items oi
     WHERE recsys.demo_uniform(seed, 35, oi.order_id * 100003 + oi.product_id) < 0.01;
    COMMENT ON TABLE order_items IS 'demo shop: order lines, with the usual mess (a few duplicates and discontinued products)';

    CREATE VIEW order_lines AS
    SELECT o.customer_id, oi.product_id, o.ordered_at, o.order_id, oi.quantity
      FROM orders o JOIN order_items oi ON oi.order_id = o.order_id
     WHERE o.status <> 'cancelled';
    COMMENT ON VIEW order_lines IS 'demo shop: completed order lines, the events recsys reads';

    -- curated bundles: per series a starter kit (anchor + 3 complements), per brand an accessory pack
    CREATE TABLE bundles (bundle_id bigint PRIMARY KEY, name text NOT NULL, dept integer NOT NULL);
    CREATE TABLE bundle_items (bundle_id bigint NOT NULL, product_id bigint NOT NULL, PRIMARY KEY (bundle_id, product_id));
    INSERT INTO bundles
    SELECT 500 + sr.series, min(p.brand || ' ' || p.line || ' ' || d.anchor) || ' starter kit', min(d.dept)
      FROM (SELECT DISTINCT (product_id - 1000) / 5 AS series FROM products) sr
      JOIN products p ON p.product_id = 1000 + sr.series * 5
      JOIN departments d ON d.dept = p.dept
     GROUP BY sr.series;
    INSERT INTO bundle_items
    SELECT 500 + (p.product_id - 1000) / 5, p.product_id FROM products p WHERE (p.product_id - 1000) % 5 IN (0, 1, 2, 3);
    INSERT INTO bundles
    SELECT 600 + (d.dept - 1) * 3 + b, d.brands[b] || ' ' || lower(d.anchor) || ' accessory pack', d.dept
      FROM departments d CROSS JOIN generate_series(1, 3) b;
    INSERT INTO bundle_items
    SELECT 600 + (p.dept - 1) * 3 + b, p.product_id
      FROM departments d CROSS JOIN generate_series(1, 3) b
      JOIN products p ON p.dept = d.dept AND p.brand = d.brands[b] AND p.line = 'Lite'
     WHERE (p.product_id - 1000) % 5 > 0;
    COMMENT ON TABLE bundles IS 'demo shop: curated bundles (starter kits and accessory packs)';
    COMMENT ON TABLE bundle_items IS 'demo shop: what each curated bundle holds';

    -- bundle purchases: 0 to 3 per customer, from favourite departments and brands
    CREATE TABLE bundle_orders (customer_id bigint NOT NULL, bundle_id bigint NOT NULL, ordered_at timestamptz NOT NULL);
    INSERT INTO bundle_orders
    SELECT c.customer_id,
           CASE WHEN recsys.demo_uniform(seed, 41, c.customer_id * 10 + j) < 0.5
                THEN 500 + (x.dept - 1) * 6 + (x.brand - 1) * 2
                       + (recsys.demo_uniform(seed, 42, c.customer_id * 10 + j) < c.pro_taste)::int
                ELSE 600 + (x.dept - 1) * 3 + x.brand END,
           timestamptz '2026-05-01 08:00+00' + recsys.demo_uniform(seed, 43, c.customer_id * 10 + j) * interval '183 days'
      FROM customers c
     CROSS JOIN LATERAL generate_series(1, floor(recsys.demo_uniform(seed, 40, c.customer_id) ^ 1.5 * 4)::int) j
     CROSS JOIN LATERAL (
        SELECT CASE WHEN c.second_dept IS NOT NULL AND recsys.demo_uniform(seed, 44, c.customer_id * 10 + j) < 0.4
                    THEN c.second_dept ELSE c.fav_dept END AS dept,
               CASE WHEN recsys.demo_uniform(seed, 45, c.customer_id * 10 + j) < 0.7 THEN c.fav_brand
                    ELSE 1 + floor(recsys.demo_uniform(seed, 46, c.customer_id * 10 + j) * 3)::int END AS brand
     ) x;
    COMMENT ON TABLE bundle_orders IS 'demo shop: bundle purchases';

    SELECT pg_catalog.jsonb_build_object(
             'customers', (SELECT count(*) FROM customers), 'products', (SELECT count(*) FROM products),
             'orders', (SELECT count(*) FROM orders), 'order_items', (SELECT count(*) FROM order_items),
             'bundles', (SELECT count(*) FROM bundles), 'bundle_items', (SELECT count(*) FROM bundle_items),
             'bundle_orders', (SELECT count(*) FROM bundle_orders))
      INTO counts;

    IF register THEN
        PERFORM recsys.register_events(pg_catalog.format('%I.order_lines', target_schema)::regclass,
                                       'customer_id', 'product_id', 'ordered_at', 'order_id', 'quantity');
        PERFORM recsys.register_items(pg_catalog.format('%I.products', target_schema)::regclass,
                                      'product_id', 'name', 'category', 'price', 'stock');
        PERFORM recsys.register_bundles(pg_catalog.format('%I.bundle_items', target_schema)::regclass,
                                        'bundle_id', 'product_id');
        PERFORM recsys.register_bundle_events(pg_catalog.format('%I.bundle_orders', target_schema)::regclass,
                                              'customer_id', 'bundle_id', 'ordered_at');
    END IF;
    RETURN counts;
END
$fn$;
COMMENT ON FUNCTION recsys.demo_shop(name, integer, bigint, boolean) IS 'creates the deterministic demo shop in a new schema (customers, products, orders, order_items, order_lines view, bundles, bundle_items, bundle_orders) and, unless register is false, registers it as the recsys sources; returns row counts';

-- Campaigns, seasonality and known promotion effects for a demo shop (the uses beyond recommendation: who
-- responds to which offer, and how much will sell). The truth is kept beside the data, as the customers' tastes
-- are: each exposure's purchase probability with and without the offer, so an estimate can be checked.
--@begin recsys.demo_promotions(name, bigint, boolean)
CREATE FUNCTION recsys.demo_promotions(target_schema name DEFAULT 'shop', seed bigint DEFAULT 42,
                                       register boolean DEFAULT true)
RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    counts jsonb;
    cum float8[];
    total float8;
    first_day constant date := date '2024-11-01';
    ndays constant integer := 730;
BEGIN
    IF target_schema IS NULL OR seed IS NULL OR register IS NULL THEN
        RAISE EXCEPTION 'target_schema, seed and register must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('%I.orders', target_schema)) IS NULL
       OR pg_catalog.to_regclass(pg_catalog.format('%I.customers', target_schema)) IS NULL THEN
        RAISE EXCEPTION 'schema % holds no demo shop', pg_catalog.quote_ident(target_schema)
            USING ERRCODE = 'undefined_table', HINT = 'Create one first with recsys.demo_shop(target_schema).';
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('%I.campaigns', target_schema)) IS NOT NULL THEN
        RAISE EXCEPTION 'the demo shop in schema % already has campaigns', pg_catalog.quote_ident(target_schema)
            USING ERRCODE = 'duplicate_table';
    END IF;
    PERFORM pg_catalog.set_config('search_path', pg_catalog.quote_ident(target_schema) || ', pg_catalog, pg_temp', true);

    -- two years of orders (November 2024 to October 2026): busier at weekends and towards the year's end. Each
    -- order keeps its own uniform draw and moves to the day where the seasonal distribution reaches it.
    SELECT array_agg(c ORDER BY d), max(c + w) INTO cum, total
      FROM (SELECT d, w, coalesce(sum(w) OVER (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS c
              FROM (SELECT d, (ARRAY[1.2, 0.85, 0.9, 0.95, 1.0, 1.15, 1.35])[extract(dow FROM first_day + d)::int + 1]
                              * (1 + 0.35 * cos(2 * pi() * (extract(doy FROM first_day + d) - 355) / 365.25)) AS w
                      FROM generate_series(0, ndays - 1) d) x) y;
    UPDATE orders o
       SET ordered_at = (first_day + (width_bucket(recsys.demo_uniform(seed, 21, o.order_id) * total, cum) - 1))::timestamptz
                        + interval '8 hours' + recsys.demo_uniform(seed, 29, o.order_id) * interval '13 hours';
    UPDATE bundle_orders b
       SET ordered_at = (first_day + (width_bucket(recsys.demo_uniform(seed, 47, pg_catalog.hashtext(b::text)) * total, cum) - 1))::timestamptz
                        + interval '10 hours';

    -- campaigns: a target (a category, a curated bundle or one product), a discount and two weeks; the first five
    -- hold out a random 30% of the customers they pick (randomised), the rest go to every customer of the
    -- department (targeted: no control group). Two more run from November 2026 on: offers to recommend now.
    CREATE TABLE campaigns (
        campaign_id   text PRIMARY KEY,
        name          text NOT NULL,
        target_kind   text NOT NULL,
        target        text NOT NULL,
        dept          integer NOT NULL,
        discount      numeric NOT NULL,
        discount_unit text NOT NULL,
        starts        timestamptz NOT NULL,
        ends          timestamptz NOT NULL,
        randomised    boolean NOT NULL,
        strength      double precision NOT NULL
    );
    INSERT INTO campaigns VALUES
      ('C1', '20% off coffee beans',          'category', 'Coffee Beans',     4, 20, 'percent', '2026-03-02', '2026-03-16', true,  1.0),
      ('C2', '15% off running socks',         'category', 'Running Socks',    5, 15, 'percent', '2026-04-06', '2026-04-20', true,  0.8),
      ('C3', '10 off the Brava starter kit',  'bundle',   '518',              4, 10, 'amount',  '2026-05-04', '2026-05-18', true,  1.2),
      ('C4', '25% off phone cases',           'category', 'Phone Case',       1, 25, 'percent', '2026-06-01', '2026-06-15', true,  1.4),
      ('C5', '5 off the Forge Lite apron',    'item',     '1213',             8,  5, 'amount',  '2026-07-06', '2026-07-20', true,  0.6),
      ('C6', '20% off memory cards',          'category', 'Memory Card',      3, 20, 'percent', '2026-08-03', '2026-08-17', false, 1.0),
      ('C7', '15% off game controllers',      'category', 'Controller',       6, 15, 'percent', '2026-09-07', '2026-09-21', false, 0.9),
      ('C8', '20% off descaler',              'category', 'Descaler',         4, 20, 'percent', '2026-11-01', '2026-12-31', true,  1.0),
      ('C9', '10% off wireless earbuds',      'category', 'Wireless Earbuds', 1, 10, 'percent', '2026-11-01', '2026-12-31', true,  0.7),
      ('C10', '15% off knife sharpeners',     'category', 'Knife Sharpener',  8, 15, 'percent', '2026-11-01', '2026-12-31', true,  1.1);
    COMMENT ON TABLE campaigns IS 'demo shop: promotions (target, discount, window); randomised ones hold out 30% of the customers they pick; strength is the hidden size of the lift';

    -- what each customer would do with and without each offer (hidden, like the customers' tastes): customers of
    -- the department buy anyway (a small lift), customers with it as their second department are the persuadable
    -- ones, the rest barely react
    CREATE TABLE campaign_truth (
        campaign_id text NOT NULL,
        customer_id bigint NOT NULL,
        p_without   double precision NOT NULL,
        p_with      double precision NOT NULL,
        PRIMARY KEY (campaign_id, customer_id)
    );
    INSERT INTO campaign_truth
    SELECT k.campaign_id, c.customer_id, a.p0, least(a.p0 + k.strength * a.lift, 0.95)
      FROM campaigns k CROSS JOIN customers c
     CROSS JOIN LATERAL (
        SELECT CASE WHEN c.fav_dept = k.dept THEN 0.22 WHEN c.second_dept = k.dept THEN 0.05 ELSE 0.01 END AS p0,
               CASE WHEN c.fav_dept = k.dept THEN 0.03 WHEN c.second_dept = k.dept THEN 0.12 ELSE 0.01 END AS lift
     ) a;
    COMMENT ON TABLE campaign_truth IS 'demo shop: each customer''s hidden chance to buy each campaign''s target in its window, without and with the offer';

    -- exposures: randomised campaigns pick half the customers and hold 30% of them out; targeted ones reach every
    -- customer of the department
    CREATE TABLE campaign_exposures (
        campaign_id text NOT NULL,
        customer_id bigint NOT NULL,
        exposed_at  timestamptz NOT NULL,
        treated     boolean NOT NULL,
        p_without   double precision NOT NULL,
        p_with      double precision NOT NULL,
        bought_anyway boolean NOT NULL,
        PRIMARY KEY (campaign_id, customer_id)
    );
    INSERT INTO campaign_exposures
    SELECT k.campaign_id, c.customer_id, k.starts,
           NOT k.randomised OR recsys.demo_uniform(seed, 61, c.customer_id * 100 + k.n) >= 0.3,
           t.p_without, t.p_with, false
      FROM (SELECT cp.*, row_number() OVER (ORDER BY cp.starts, cp.campaign_id)::int AS n FROM campaigns cp) k
     CROSS JOIN customers c
      JOIN campaign_truth t ON t.campaign_id = k.campaign_id AND t.customer_id = c.customer_id
     WHERE CASE WHEN k.randomised THEN recsys.demo_uniform(seed, 60, c.customer_id * 100 + k.n) < 0.5
                ELSE k.dept IN (c.fav_dept, c.second_dept) END;
    -- an order of theirs in the window already holds the target: no offer can change that
    UPDATE campaign_exposures e SET bought_anyway = true
      FROM (SELECT DISTINCT k.campaign_id, o.customer_id
              FROM campaigns k
              JOIN orders o ON o.ordered_at >= k.starts AND o.ordered_at < k.ends AND o.status <> 'cancelled'
              JOIN order_items oi ON oi.order_id = o.order_id
              JOIN products p ON p.product_id = oi.product_id
             WHERE CASE k.target_kind WHEN 'category' THEN p.category = k.target
                                      WHEN 'bundle' THEN p.product_id IN (SELECT bi.product_id FROM bundle_items bi
                                                                           WHERE bi.bundle_id = k.target::bigint)
                                      ELSE p.product_id = k.target::bigint END) b
     WHERE b.campaign_id = e.campaign_id AND b.customer_id = e.customer_id;
    COMMENT ON TABLE campaign_exposures IS 'demo shop: who each campaign reached (treated) or held out (not treated), with the hidden purchase probabilities without and with the offer, and whether a regular order of theirs in the window already held the target (bought_anyway); the true uplift of a campaign on buying in its window is the mean of p_with - p_without over those who did not';

    -- what they bought: one order per buyer in the campaign's window, the target at the offer's price for the
    -- treated (the customer's brand; a bundle's items for a bundle); past campaigns only
    INSERT INTO orders
    SELECT 900000000 + k.n * 1000000 + e.customer_id, e.customer_id,
           k.starts + recsys.demo_uniform(seed, 63, e.customer_id * 100 + k.n) * (k.ends - k.starts),
           'completed', k.dept, (k.dept - 1) * 6 + (c.fav_brand - 1) * 2
      FROM campaign_exposures e
      JOIN (SELECT cp.*, row_number() OVER (ORDER BY cp.starts, cp.campaign_id)::int AS n FROM campaigns cp) k USING (campaign_id)
      JOIN customers c USING (customer_id)
     WHERE k.ends <= timestamptz '2026-11-01'
       AND recsys.demo_uniform(seed, 62, e.customer_id * 100 + k.n) < CASE WHEN e.treated THEN e.p_with ELSE e.p_without END;
    INSERT INTO order_items
    SELECT o.order_id, p.product_id, 1,
           round(CASE WHEN e.treated AND k.discount_unit = 'percent' THEN p.price * (1 - k.discount / 100)
                      WHEN e.treated THEN greatest(p.price - k.discount / CASE k.target_kind WHEN 'bundle' THEN 4 ELSE 1 END, 0)
                      ELSE p.price END, 2)
      FROM orders o
      JOIN (SELECT cp.*, row_number() OVER (ORDER BY cp.starts, cp.campaign_id)::int AS n FROM campaigns cp) k
        ON o.order_id / 1000000 = 900 + k.n
      JOIN campaign_exposures e ON e.campaign_id = k.campaign_id AND e.customer_id = o.customer_id
      JOIN products p ON CASE k.target_kind
                             WHEN 'category' THEN p.category = k.target AND p.dept = k.dept AND p.line = 'Lite'
                                                  AND p.brand = (SELECT d.brands[cu.fav_brand] FROM departments d, customers cu
                                                                  WHERE d.dept = k.dept AND cu.customer_id = o.customer_id)
                             WHEN 'bundle' THEN p.product_id IN (SELECT bi.product_id FROM bundle_items bi WHERE bi.bundle_id = k.target::bigint)
                             ELSE p.product_id = k.target::bigint END
     WHERE o.order_id >= 900000000;

    SELECT pg_catalog.jsonb_build_object(
             'campaigns', (SELECT count(*) FROM campaigns),
             'exposures', (SELECT count(*) FROM campaign_exposures),
             'campaign_orders', (SELECT count(*) FROM orders WHERE order_id >= 900000000),
             'first_order', (SELECT min(ordered_at)::date FROM orders), 'last_order', (SELECT max(ordered_at)::date FROM orders))
      INTO counts;
    IF register THEN
        PERFORM recsys.register_promotions(pg_catalog.format('%I.campaigns', target_schema)::regclass,
                                           'campaign_id', 'target', 'discount', 'starts', 'ends',
                                           target_kind_column => 'target_kind', discount_unit_column => 'discount_unit',
                                           name_column => 'name');
        PERFORM recsys.register_promotion_exposures(pg_catalog.format('%I.campaign_exposures', target_schema)::regclass,
                                                    'customer_id', 'campaign_id', 'exposed_at', 'treated');
    END IF;
    RETURN counts;
END
$fn$;
COMMENT ON FUNCTION recsys.demo_promotions(name, bigint, boolean) IS 'adds to a demo shop (recsys.demo_shop) two years of seasonal order times (weekends and the year''s end busier), ten campaigns (campaigns: randomised ones hold out 30%, targeted ones do not; three run from November 2026), every customer''s hidden purchase probabilities with and without each offer (campaign_truth), the exposures (campaign_exposures) and the orders they caused, and registers them unless register is false; returns counts';
--@end

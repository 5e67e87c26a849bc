package mysql

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestPartitionedMirror mirrors a MariaDB table into an Iceberg table
// partitioned by day(created) and region (mysql.partitions:), through the
// snapshot and the binlog: updates that move rows to other days and
// regions, deletes, a key change, and a restart that rebuilds the key
// index; after each step the mirror equals MariaDB row for row and every
// data file holds only rows of its partition.
func TestPartitionedMirror(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE orders (
		id INT PRIMARY KEY, region VARCHAR(8) NULL, created DATETIME(6) NOT NULL,
		amount DECIMAL(10,2), status VARCHAR(10))`)
	regions := []string{"'eu'", "'us'", "'ap'", "NULL"}
	for i := range 200 {
		mustExec(t, db, fmt.Sprintf(`INSERT INTO orders VALUES (%d, %s, TIMESTAMP('2026-01-01') + INTERVAL %d HOUR, %d.%02d, 'new')`,
			i, regions[i%len(regions)], (i*7)%96, i, i%100))
	}
	cat := tabletest.OpenSQLite(t)
	cfg := testConfig(dsn, name)
	cfg.Partitions = []TablePartition{
		{Tables: name + `\.nothing`, Partition: []table.PartitionField{{Column: "id", Transform: "bucket[2]"}}},
		{Tables: name + `\.orders`, Partition: []table.PartitionField{{Column: "created", Transform: "day"}, {Column: "region"}}},
	}
	run := func() func() error {
		src, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	}
	iceName := name + ".orders"
	stop := run()
	waitEqual(t, db, name, "orders", cat, iceName, 60*time.Second)
	checkMirrorPartitions(t, cat, iceName, 3)

	// Through the binlog: rows move to other days and regions.
	mustExec(t, db, `UPDATE orders SET created = created + INTERVAL 2 DAY, status = 'moved' WHERE id % 3 = 0`)
	mustExec(t, db, `UPDATE orders SET region = CASE WHEN region IS NULL THEN 'eu' WHEN region = 'eu' THEN NULL ELSE 'ap' END WHERE id % 5 = 1`)
	mustExec(t, db, `UPDATE orders SET amount = amount + 1 WHERE id % 7 = 2`) // in place
	mustExec(t, db, `DELETE FROM orders WHERE id % 11 = 4`)
	mustExec(t, db, `UPDATE orders SET id = id + 1000, created = created - INTERVAL 1 DAY WHERE id < 10`) // key changes
	for i := 200; i < 260; i++ {
		mustExec(t, db, fmt.Sprintf(`INSERT INTO orders VALUES (%d, %s, TIMESTAMP('2026-01-03') + INTERVAL %d MINUTE, 1.00, 'late')`,
			i, regions[i%len(regions)], i))
	}
	// One transaction moving a row twice and deleting another it moved.
	mustExec(t, db, `BEGIN; UPDATE orders SET region = 'us' WHERE id = 12; UPDATE orders SET created = created + INTERVAL 5 DAY WHERE id = 12;
		UPDATE orders SET region = 'xx' WHERE id = 13; DELETE FROM orders WHERE id = 13; COMMIT`)
	waitEqual(t, db, name, "orders", cat, iceName, 60*time.Second)
	checkMirrorPartitions(t, cat, iceName, 3)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Restarted: the key index is rebuilt from the partitioned files.
	stop = run()
	mustExec(t, db, `UPDATE orders SET created = created + INTERVAL 1 DAY, region = 'us' WHERE id % 4 = 2`)
	mustExec(t, db, `DELETE FROM orders WHERE id % 9 = 5`)
	waitEqual(t, db, name, "orders", cat, iceName, 60*time.Second)
	checkMirrorPartitions(t, cat, iceName, 3)

	// Dropping a partition source column is a DDL the table cannot
	// follow: it halts, keeping its rows.
	mustExec(t, db, `ALTER TABLE orders DROP COLUMN region`)
	deadline := time.Now().Add(30 * time.Second)
	for tabletest.Load(t, cat, iceName).Properties()[writer.PropHalted] == "" {
		if time.Now().After(deadline) {
			tb := tabletest.Load(t, cat, iceName)
			t.Logf("schema %v spec %v", tb.Schema(), tb.Spec())
			t.Fatal("dropping the partition column region did not halt the table")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("halted: %s", tabletest.Load(t, cat, iceName).Properties()[writer.PropHalted])
	checkMirrorPartitions(t, cat, iceName, 3)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// checkMirrorPartitions checks that the table is partitioned and that each
// live data file holds only rows of its partition (each row's partition
// computed with iceberg-go's Transform.Apply), with the delete files a
// scan applies to it in its partition; and that the rows span at least
// minParts partitions.
func checkMirrorPartitions(t *testing.T, cat icecat.Catalog, name string, minParts int) {
	t.Helper()
	ctx := context.Background()
	tbl := tabletest.Load(t, cat, name)
	spec, sc := tbl.Spec(), tbl.Schema()
	if spec.IsUnpartitioned() {
		t.Fatalf("%s is not partitioned", name)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]bool{}
	for _, task := range tasks {
		df := task.File
		parts[fmt.Sprint(df.Partition())] = true
		for _, d := range task.DeleteFiles {
			if fmt.Sprint(d.Partition()) != fmt.Sprint(df.Partition()) || d.SpecID() != df.SpecID() {
				t.Errorf("delete file %s of partition %v applies to %s of partition %v", d.FilePath(), d.Partition(), df.FilePath(), df.Partition())
			}
		}
		raw := icetable.FileScanTask{File: df, Start: 0, Length: df.FileSizeBytes()}
		_, recs, err := tbl.Scan().ReadTasks(ctx, []icetable.FileScanTask{raw})
		if err != nil {
			t.Fatal(err)
		}
		for rec, err := range recs {
			if err != nil {
				t.Fatal(err)
			}
			for _, pf := range spec.Fields() {
				col, _ := sc.FindColumnName(pf.SourceID())
				idx := rec.Schema().FieldIndices(col)
				if len(idx) != 1 {
					t.Fatalf("no column %s", col)
				}
				arr := rec.Column(idx[0])
				for i := range arr.Len() {
					var lit iceberg.Optional[iceberg.Literal]
					if arr.IsValid(i) {
						lit.Valid = true
						switch a := arr.(type) {
						case *array.String:
							lit.Val = iceberg.NewLiteral(a.Value(i))
						case *array.Timestamp:
							lit.Val = iceberg.NewLiteral(iceberg.Timestamp(a.Value(i)))
						case *array.Int32:
							lit.Val = iceberg.NewLiteral(a.Value(i))
						case *array.Int64:
							lit.Val = iceberg.NewLiteral(a.Value(i))
						default:
							t.Fatalf("column %s: %s", col, arr.DataType())
						}
					}
					want := "<nil>"
					if res := pf.Transform.Apply(lit); res.Valid {
						want = fmt.Sprint(res.Val.Any())
					}
					if got := fmt.Sprint(df.Partition()[pf.FieldID]); got != want {
						t.Fatalf("%s: data file %s (partition %v) holds a row with %s %s", name, df.FilePath(), df.Partition(), pf.Name, want)
					}
				}
			}
			rec.Release()
		}
	}
	if len(parts) < minParts {
		t.Errorf("%s: rows in %d partitions, want at least %d", name, len(parts), minParts)
	}
}

// TestConfigPartitions: partitions: decodes as a table spec's partition:
// does, and bad entries are named.
func TestConfigPartitions(t *testing.T) {
	t.Setenv(EnvDSN, "")
	var c Config
	doc := "dsn: u@tcp(h:1)/\ninclude: [shop\\..*]\npartitions:\n" +
		"  - tables: 'shop\\.orders'\n    partition:\n      - {column: created_at, transform: day}\n      - {column: id, transform: \"bucket[8]\"}\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []table.PartitionField{{Column: "created_at", Transform: "day"}, {Column: "id", Transform: "bucket[8]"}}
	if len(c.Partitions) != 1 || c.Partitions[0].Tables != `shop\.orders` || !slices.Equal(c.Partitions[0].Partition, want) {
		t.Fatalf("decoded %+v", c.Partitions)
	}
	src, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	def := &tableDef{PK: []string{"id"}}
	if got := src.spec(def, "shop.orders", "shop.orders").Partition; !slices.Equal(got, want) {
		t.Errorf("shop.orders partitioned by %v", got)
	}
	if got := src.spec(def, "shop.orders_archive", "x.y").Partition; got != nil {
		t.Errorf("shop.orders_archive partitioned by %v; the pattern matches whole names", got)
	}
	for _, tc := range []struct {
		p    TablePartition
		want string
	}{
		{TablePartition{Tables: "(", Partition: want}, "mysql.partitions[0].tables:"},
		{TablePartition{Partition: want}, "mysql.partitions[0].tables:"},
		{TablePartition{Tables: "a"}, "mysql.partitions[0].partition:"},
		{TablePartition{Tables: "a", Partition: []table.PartitionField{{Column: "addr.city"}}}, "mysql.partitions[0].partition[0].column:"},
	} {
		c2 := c
		c2.Partitions = []TablePartition{tc.p}
		if err := c2.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.p, err, tc.want)
		}
	}
}

package table

import (
	"context"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
)

// LiveDataFiles lists the data files of the table txn stages, each once;
// ok is false when the table has delete files too (a writer that replaces
// every data file must then leave it to iceberg-go's Overwrite, which
// applies them).
func LiveDataFiles(ctx context.Context, txn *icetable.Transaction) (files []iceberg.DataFile, ok bool, err error) {
	scan, err := txn.Scan()
	if err != nil {
		return nil, false, err
	}
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return nil, false, err
	}
	seen := make(map[string]bool, len(tasks))
	for _, task := range tasks {
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			return nil, false, nil
		}
		if p := task.File.FilePath(); !seen[p] {
			seen[p] = true
			files = append(files, task.File)
		}
	}
	return files, true, nil
}

// ReplaceDataFiles adds files to txn in place of old: an append when old
// is empty (it removes no rows), else a snapshot replacing them.
func ReplaceDataFiles(ctx context.Context, txn *icetable.Transaction, old, files []iceberg.DataFile, props iceberg.Properties) error {
	if len(old) == 0 {
		return txn.AddDataFiles(ctx, files, props, icetable.WithoutDuplicateCheck())
	}
	return txn.ReplaceDataFilesWithDataFiles(ctx, old, files, props)
}

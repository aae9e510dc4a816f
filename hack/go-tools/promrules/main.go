// promrules checks Prometheus rule files and PromQL expressions with Prometheus's own
// parsers (model/rulefmt, as `promtool check rules` uses it, and promql/parser), and
// says which metric names they select, so a test can hold them to what /metrics exports.
//
//	promrules check FILE      validate a rule file (the `groups:` document); print
//	                          {"groups":[{"name":..,"rules":[{"name":..,"expr":..,"metrics":[..]}]}]}
//	promrules metrics         read a JSON array of PromQL expressions on stdin; print a
//	                          JSON array with the metric names each one selects
//	promrules eval            read {"scrapes":[{"at":ms,"text":exposition,"target":{labels}}],
//	                          "queries":[{"expr":..,"at":ms}]} on stdin: store every scrape
//	                          in a TSDB as Prometheus would (target labels added unless the
//	                          sample has them, i.e. honor_labels), run each query with the
//	                          PromQL engine, print [[{"metric":{..},"value":"n"}],..]
//
// Exit codes: 0 valid, 1 invalid (the errors on stderr), 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"
)

type ruleOut struct {
	Name    string   `json:"name"`
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
}

type groupOut struct {
	Name  string    `json:"name"`
	Rules []ruleOut `json:"rules"`
}

// promtool's defaults: UTF-8 names, no experimental functions.
var promqlParser = parser.NewParser(parser.Options{})

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "check":
		if len(os.Args) != 3 {
			usage()
		}
		os.Exit(check(os.Args[2]))
	case "metrics":
		os.Exit(metricsOfStdin())
	case "eval":
		if err := evalStdin(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: promrules check FILE | promrules metrics < exprs.json | promrules eval < scrapes-and-queries.json")
	os.Exit(2)
}

func check(file string) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// ignoreUnknownFields=false: a misspelt key is an error, as in `promtool check rules`.
	groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, promqlParser, logger)
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	out := struct {
		Groups []groupOut `json:"groups"`
	}{Groups: []groupOut{}}
	for _, group := range groups.Groups {
		g := groupOut{Name: group.Name, Rules: []ruleOut{}}
		for _, rule := range group.Rules {
			name := rule.Alert
			if name == "" {
				name = rule.Record
			}
			names, err := metricNames(rule.Expr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s: %v\n", file, name, err)
				return 1
			}
			g.Rules = append(g.Rules, ruleOut{Name: name, Expr: rule.Expr, Metrics: names})
		}
		out.Groups = append(out.Groups, g)
	}
	return printJSON(out)
}

func metricsOfStdin() int {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var exprs []string
	if err := json.Unmarshal(data, &exprs); err != nil {
		fmt.Fprintln(os.Stderr, "stdin is not a JSON array of strings:", err)
		return 1
	}
	out := make([][]string, 0, len(exprs))
	failed := false
	for _, expr := range exprs {
		names, err := metricNames(expr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%q: %v\n", expr, err)
			failed = true
		}
		out = append(out, names)
	}
	if failed {
		return 1
	}
	return printJSON(out)
}

// metricNames lists the metric names an expression's selectors match by __name__,
// sorted and without repeats. A selector without an equality on __name__ is an error:
// nothing could hold it to a list of exported names.
func metricNames(expr string) ([]string, error) {
	ast, err := promqlParser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var problem error
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		selector, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := selector.Name
		for _, matcher := range selector.LabelMatchers {
			if matcher.Name == labels.MetricName && matcher.Type == labels.MatchEqual {
				name = matcher.Value
			}
		}
		if name == "" {
			problem = fmt.Errorf("selector %s names no metric", selector.String())
		} else {
			seen[name] = true
		}
		return nil
	})
	if problem != nil {
		return nil, problem
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

func printJSON(value any) int {
	encoder := json.NewEncoder(os.Stdout)
	if err := encoder.Encode(value); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type scrape struct {
	At     int64             `json:"at"`
	Text   string            `json:"text"`
	Target map[string]string `json:"target"`
}

type query struct {
	Expr string `json:"expr"`
	At   int64  `json:"at"`
}

// Value is a string, as in Prometheus's HTTP API, so NaN and ±Inf survive JSON.
type sampleOut struct {
	Metric map[string]string `json:"metric"`
	Value  string            `json:"value"`
}

func evalStdin() error {
	var input struct {
		Scrapes []scrape `json:"scrapes"`
		Queries []query  `json:"queries"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	dir, err := os.MkdirTemp("", "promrules-tsdb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := tsdb.Open(dir, nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		return err
	}
	defer db.Close()

	ctx := context.Background()
	sort.SliceStable(input.Scrapes, func(i, j int) bool { return input.Scrapes[i].At < input.Scrapes[j].At })
	for _, s := range input.Scrapes {
		if err := store(ctx, db, s); err != nil {
			return err
		}
	}

	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 10_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	out := make([][]sampleOut, 0, len(input.Queries))
	for _, q := range input.Queries {
		instant, err := engine.NewInstantQuery(ctx, db, nil, q.Expr, time.UnixMilli(q.At))
		if err != nil {
			return fmt.Errorf("%q: %w", q.Expr, err)
		}
		result := instant.Exec(ctx)
		if result.Err != nil {
			return fmt.Errorf("%q: %w", q.Expr, result.Err)
		}
		samples := []sampleOut{}
		switch value := result.Value.(type) {
		case promql.Vector:
			for _, sample := range value {
				samples = append(samples, sampleOut{Metric: sample.Metric.Map(), Value: formatValue(sample.F)})
			}
		case promql.Scalar:
			samples = append(samples, sampleOut{Metric: map[string]string{}, Value: formatValue(value.V)})
		default:
			return fmt.Errorf("%q: a %s, not an instant vector", q.Expr, result.Value.Type())
		}
		instant.Close()
		out = append(out, samples)
	}
	if printJSON(out) != 0 {
		return errors.New("cannot write the result")
	}
	return nil
}

// store appends one scrape's samples at its time, as a scrape with honor_labels does:
// the target's labels are added unless the sample carries its own.
func store(ctx context.Context, db *tsdb.DB, s scrape) error {
	parser := textparse.NewPromParser([]byte(s.Text), labels.NewSymbolTable(), false)
	app := db.Appender(ctx)
	for {
		entry, err := parser.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			app.Rollback()
			return fmt.Errorf("scrape at %d: %w", s.At, err)
		}
		if entry != textparse.EntrySeries {
			continue
		}
		var sampleLabels labels.Labels
		parser.Labels(&sampleLabels)
		_, _, value := parser.Series()
		builder := labels.NewBuilder(sampleLabels)
		for name, targetValue := range s.Target {
			if sampleLabels.Get(name) == "" {
				builder.Set(name, targetValue)
			}
		}
		if _, err := app.Append(0, builder.Labels(), s.At, value); err != nil {
			app.Rollback()
			return fmt.Errorf("scrape at %d: %s: %w", s.At, sampleLabels.String(), err)
		}
	}
	return app.Commit()
}

func formatValue(value float64) string {
	return strconv.FormatFloat(value, 'g', -1, 64)
}

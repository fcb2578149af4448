// Command config-check is `docker compose config` without Docker: it loads compose files with
// compose-go, the library docker compose itself uses (interpolation from an env file, `${VAR:?}` checks,
// merging of several files, the Compose Specification schema, profiles, semantic checks such as
// depends_on cycles), and prints the resolved model, or the error docker compose would give.
//
//	cd deploy/compose/config-check
//	go run . -C ../../.. -env-file .env -profile kafka-ui docker-compose.yml docker-compose.prod.yml
//
// tests/unit/deploy/test_compose_loader.py builds and runs it when Go is installed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// inDir resolves relative paths against the project directory, as docker compose --project-directory does.
func inDir(dir string, paths []string) []string {
	resolved := make([]string, len(paths))
	for i, p := range paths {
		resolved[i] = p
		if !filepath.IsAbs(p) {
			resolved[i] = filepath.Join(dir, p)
		}
	}
	return resolved
}

func main() {
	dir := flag.String("C", ".", "project directory: the files, env files and paths inside them are relative to it")
	quiet := flag.Bool("q", false, "validate only, print nothing on success")
	var envFiles, profiles repeated
	flag.Var(&envFiles, "env-file", "env file to interpolate from, instead of the process environment (repeatable)")
	flag.Var(&profiles, "profile", "profile to enable (repeatable)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: config-check [-C dir] [-env-file f]... [-profile p]... compose-file...")
		os.Exit(2)
	}

	files := inDir(*dir, flag.Args())
	opts := []cli.ProjectOptionsFn{cli.WithWorkingDirectory(*dir), cli.WithInterpolation(true), cli.WithProfiles(profiles)}
	if len(envFiles) > 0 {
		// Only the named files: a stray variable in the caller's environment must not hide a missing one.
		opts = append(opts, cli.WithEnvFiles(inDir(*dir, envFiles)...), cli.WithDotEnv)
	} else {
		opts = append(opts, cli.WithOsEnv, cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *quiet {
		return
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

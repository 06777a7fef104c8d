//go:build tools

// Package updraft pins the project's dependencies while the code that uses
// them is written in parallel; `go mod tidy` keeps them because of this file.
package updraft

import (
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "modernc.org/sqlite"
)

module gostash.test/revproxy/goclient

go 1.24

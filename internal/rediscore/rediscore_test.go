package rediscore

import (
	"slices"
	"testing"
)

func TestOptions(t *testing.T) {
	t.Run("a URL names one Redis, its database and password", func(t *testing.T) {
		o, err := Options("redis://:secret@127.0.0.1:6390/2", nil)
		if err != nil || !slices.Equal(o.InitAddress, []string{"127.0.0.1:6390"}) || o.SelectDB != 2 || o.Password != "secret" || !o.DisableCache {
			t.Fatalf("%+v, %v", o, err)
		}
	})
	t.Run("seed addresses name a cluster and win over the URL", func(t *testing.T) {
		seeds := []string{"127.0.0.1:7001", "127.0.0.1:7002"}
		o, err := Options("redis://127.0.0.1:6390", seeds)
		if err != nil || !slices.Equal(o.InitAddress, seeds) || !o.ShuffleInit || !o.DisableCache {
			t.Fatalf("%+v, %v", o, err)
		}
	})
	t.Run("a URL that is not one is refused", func(t *testing.T) {
		if _, err := Options("http://127.0.0.1:6390", nil); err == nil {
			t.Fatal("an http URL was taken")
		}
	})
}

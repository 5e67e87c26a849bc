package gen

import (
	"strconv"
	"time"
)

// TimeStep is how far the generator clock advances per offset of a
// partition: offset o of every partition happens at StartTime + o×TimeStep,
// so partitions run side by side and a million rows per partition span
// 2 h 47 min of event time.
const TimeStep = 10 * time.Millisecond

const (
	stepMicros    = int64(TimeStep / time.Microsecond)
	lateMicros    = uint64(2 * time.Hour / time.Microsecond)
	sessionMicros = int64(30 * time.Minute / time.Microsecond)
	numUsers      = 2_000_000
	firstUserID   = 100_001
	numItems      = 500
	numCategories = 24
)

// Event types, with their weights per mille.
const (
	evPageView uint8 = iota
	evClick
	evAdShow
	evAdClick
	evAddCart
	evOrder
	evPay
	numEventTypes
)

func eventTypeNames() []string {
	return []string{"page_view", "click", "ad_show", "ad_click", "add_cart", "order", "pay"}
}

// eventTypeCum is the cumulative per-mille weight of each event type.
func eventTypeCum() [numEventTypes]uint64 {
	return [numEventTypes]uint64{600, 800, 900, 930, 975, 990, 1000}
}

// Order statuses, with cumulative percent weights and how long after
// created_at updated_at falls (min, max).
const (
	stCreated uint8 = iota
	stPaid
	stShipped
	stCompleted
	stCancelled
	numStatuses
)

func statusNames() []string {
	return []string{"created", "paid", "shipped", "completed", "cancelled"}
}

func statusCum() [numStatuses]uint64 { return [numStatuses]uint64{8, 20, 40, 92, 100} }

func statusDelay() [numStatuses][2]time.Duration {
	return [numStatuses][2]time.Duration{
		{0, 0},
		{time.Minute, 30 * time.Minute},
		{2 * time.Hour, 48 * time.Hour},
		{3 * 24 * time.Hour, 10 * 24 * time.Hour},
		{5 * time.Minute, 2 * time.Hour},
	}
}

type province struct {
	name   string
	cities [3]string
	weight int // percent
}

// provinces is a small fixed table of Chinese provinces and three of their
// cities each, weighted roughly by online-shopping volume.
func provinces() []province {
	return []province{
		{"广东", [3]string{"广州", "深圳", "东莞"}, 16},
		{"浙江", [3]string{"杭州", "宁波", "温州"}, 12},
		{"江苏", [3]string{"南京", "苏州", "无锡"}, 12},
		{"山东", [3]string{"济南", "青岛", "烟台"}, 10},
		{"四川", [3]string{"成都", "绵阳", "宜宾"}, 9},
		{"河南", [3]string{"郑州", "洛阳", "南阳"}, 9},
		{"湖北", [3]string{"武汉", "宜昌", "襄阳"}, 8},
		{"福建", [3]string{"福州", "厦门", "泉州"}, 8},
		{"湖南", [3]string{"长沙", "株洲", "岳阳"}, 8},
		{"陕西", [3]string{"西安", "宝鸡", "咸阳"}, 8},
	}
}

// model holds the immutable lookup tables rows are drawn from, pre-built as
// bytes so that appending them costs a copy.
type model struct {
	seed  uint64
	start int64 // µs since the epoch at offset 0
	late  float64
	bad   float64

	types    [][]byte
	typeCum  [numEventTypes]uint64
	statuses [][]byte
	stCum    [numStatuses]uint64
	stDelay  [numStatuses][2]int64 // µs

	provNames [][]byte
	cityNames [][3][]byte
	provPick  [100]uint8 // percent → province
	maxCity   int        // longest city name, bytes

	urlHome, urlCart, urlCheckout, urlPay int
	urlCategory, urlItem, urlSearch       int // first index of each range
	numSearch                             int
	urls                                  [][]byte

	oses   []string
	vers   []string
	nets   []string
	props  [][]byte // by (os, ver, net)
	amount [4]int64 // price endings in cents
}

func newModel(cfg *Config) *model {
	m := &model{
		seed:    uint64(cfg.Seed),
		start:   cfg.StartTime.UnixMicro(),
		late:    cfg.LateFraction,
		bad:     cfg.BadFraction,
		typeCum: eventTypeCum(),
		stCum:   statusCum(),
		amount:  [4]int64{0, 90, 99, 50},
	}
	for _, s := range eventTypeNames() {
		m.types = append(m.types, []byte(s))
	}
	for _, s := range statusNames() {
		m.statuses = append(m.statuses, []byte(s))
	}
	for i, d := range statusDelay() {
		m.stDelay[i] = [2]int64{d[0].Microseconds(), d[1].Microseconds()}
	}
	pct := 0
	for i, p := range provinces() {
		m.provNames = append(m.provNames, []byte(p.name))
		m.cityNames = append(m.cityNames, [3][]byte{[]byte(p.cities[0]), []byte(p.cities[1]), []byte(p.cities[2])})
		for _, c := range p.cities {
			m.maxCity = max(m.maxCity, len(c))
		}
		for j := 0; j < p.weight && pct < len(m.provPick); j++ {
			m.provPick[pct] = uint8(i)
			pct++
		}
	}

	const base = "https://m.shop.example.cn"
	add := func(path string) int {
		m.urls = append(m.urls, []byte(base+path))
		return len(m.urls) - 1
	}
	m.urlHome = add("/")
	m.urlCart = add("/cart")
	m.urlCheckout = add("/checkout")
	m.urlPay = add("/pay/cashier")
	m.urlCategory = len(m.urls)
	for i := 1; i <= numCategories; i++ {
		add("/category/" + strconv.Itoa(i))
	}
	m.urlItem = len(m.urls)
	for i := 1; i <= numItems; i++ {
		add("/item/" + strconv.Itoa(10000+i))
	}
	m.urlSearch = len(m.urls)
	for _, q := range []string{"phone", "earbuds", "dress", "snacks", "lipstick", "sneakers", "tea", "laptop"} {
		add("/search?q=" + q)
	}
	m.numSearch = len(m.urls) - m.urlSearch

	m.oses = []string{"android", "ios", "harmony", "h5"}
	m.vers = []string{"8.4.0", "8.3.2", "8.2.1", "7.9.5"}
	m.nets = []string{"wifi", "5g", "4g"}
	for _, os := range m.oses {
		for _, v := range m.vers {
			for _, n := range m.nets {
				m.props = append(m.props, []byte(`{"os":"`+os+`","app_ver":"`+v+`","net":"`+n+`"}`))
			}
		}
	}
	return m
}

// event is one generated row; strings are indices into the model's tables
// or fixed buffers, so filling one allocates nothing.
type event struct {
	id        int64 // partition<<40 | offset
	offset    int64
	clock     int64 // generator clock, µs
	time      int64 // event_time, µs
	bad       bool
	defect    uint8
	userID    int64
	device    [13]byte // "d" + 12 hex digits
	session   [17]byte // "s" + 16 hex digits
	etype     uint8
	url       int
	adID      int64 // 0: null
	prov      uint8
	city      uint8
	cents     int64 // amount in cents; -1: null
	props     int
	status    uint8 // order status
	updatedAt int64 // order updated_at, µs
}

const golden = 0x9e3779b97f4a7c15

// mix is splitmix64's finalizer: a bijective 64-bit hash.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// rng is a splitmix64 stream seeded per row: a pure function of (seed,
// partition, offset), so any offset can be regenerated on its own.
type rng uint64

func (r *rng) next() uint64 {
	*r += golden
	return mix(uint64(*r))
}

// unit maps x to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) * 0x1p-53 }

func eventID(p int, o int64) int64 { return int64(uint64(p)<<40 | uint64(o)) }

func (m *model) rowRNG(id int64) rng {
	return rng(mix(m.seed*golden ^ mix(uint64(id)+golden)))
}

// isBad is the first draw of gen: whether the record at (p, o) is bad.
func (m *model) isBad(p int, o int64) bool {
	r := m.rowRNG(eventID(p, o))
	return unit(r.next()) < m.bad
}

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// gen fills e with the record at (p, o).
func (m *model) gen(p int, o int64, e *event) {
	e.id = eventID(p, o)
	e.offset = o
	r := m.rowRNG(e.id)
	e.bad = unit(r.next()) < m.bad // first draw: see isBad
	e.defect = uint8(r.next() % 3)
	e.clock = m.start + o*stepMicros
	lateDraw, lateBy := unit(r.next()), r.next()%lateMicros
	e.time = e.clock
	if lateDraw < m.late {
		e.time -= int64(lateBy)
	}

	// Users: skewed towards low ids (a few heavy users, a long tail); each
	// has a home province and city, one or two devices, and a session per
	// 30-minute window of the clock.
	u := unit(r.next())
	e.userID = firstUserID + int64(u*u*numUsers)
	uh := mix(uint64(e.userID) ^ m.seed*0x51_7c_c1_b7_27_22_0a_95)
	e.prov = m.provPick[uh%100]
	e.city = uint8((uh >> 32) % 3)
	dev := mix(uh + 1)
	devDraw := r.next()
	if uh>>56 < 77 { // ~30% of users have a second device
		dev = mix(dev + devDraw&1)
	}
	e.device[0] = 'd'
	putHex(e.device[1:], dev)
	e.session[0] = 's'
	putHex(e.session[1:], mix(uh^uint64(e.clock/sessionMicros)*golden))

	w := r.next() % 1000
	e.etype = 0
	for e.etype < numEventTypes-1 && w >= m.typeCum[e.etype] {
		e.etype++
	}
	pageDraw, itemDraw, adDraw, amountDraw, endDraw := r.next(), unit(r.next()), r.next(), unit(r.next()), r.next()
	item := m.urlItem + int(itemDraw*itemDraw*numItems)
	e.adID = 0
	e.cents = -1
	switch e.etype {
	case evPageView:
		switch k := pageDraw % 100; {
		case k < 15:
			e.url = m.urlHome
		case k < 30:
			e.url = m.urlCategory + int(pageDraw>>8)%numCategories
		case k < 85:
			e.url = item
		case k < 95:
			e.url = m.urlSearch + int(pageDraw>>8)%m.numSearch
		default:
			e.url = m.urlCart
		}
	case evClick, evAddCart:
		e.url = item
	case evAdShow, evAdClick:
		if pageDraw%2 == 0 {
			e.url = m.urlHome
		} else {
			e.url = m.urlCategory + int(pageDraw>>8)%numCategories
		}
		e.adID = 1001 + int64(adDraw%500)
	case evOrder, evPay:
		e.url = m.urlCheckout
		if e.etype == evPay {
			e.url = m.urlPay
		}
		// ¥1 to ¥2000, median ≈ ¥250, with shop-like endings (.00 .90 .99 .50).
		yuan := 1 + int64(amountDraw*amountDraw*amountDraw*2000)
		e.cents = yuan*100 + m.amount[endDraw%4]
	}
	osDraw, verDraw, netDraw := dev%uint64(len(m.oses)), r.next()%uint64(len(m.vers)), r.next()%uint64(len(m.nets))
	e.props = int((osDraw*uint64(len(m.vers))+verDraw)*uint64(len(m.nets)) + netDraw)

	sw := r.next() % 100
	e.status = 0
	for e.status < numStatuses-1 && sw >= m.stCum[e.status] {
		e.status++
	}
	d := m.stDelay[e.status]
	e.updatedAt = e.time + d[0]
	if span := d[1] - d[0]; span > 0 {
		e.updatedAt += int64(r.next() % uint64(span))
	}
}

// appendJSON renders e as the raw JSON record a producer would have sent,
// with the defect that makes it bad: user_id a string, event_time missing,
// or event_time unparsable.
func (m *model) appendJSON(b []byte, e *event) []byte {
	b = append(b, `{"event_id":`...)
	b = strconv.AppendInt(b, e.id, 10)
	switch e.defect {
	case 1: // missing required event_time
	case 2:
		b = append(b, `,"event_time":"2026-13-45T99:00"`...)
	default:
		b = append(b, `,"event_time":"`...)
		b = time.UnixMicro(e.time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, '"')
	}
	if e.defect == 0 {
		b = append(b, `,"user_id":"abc"`...)
	} else {
		b = append(b, `,"user_id":`...)
		b = strconv.AppendInt(b, e.userID, 10)
	}
	b = appendField(b, "device_id", e.device[:])
	b = appendField(b, "session_id", e.session[:])
	b = appendField(b, "event_type", m.types[e.etype])
	b = appendField(b, "page_url", m.urls[e.url])
	b = append(b, `,"ad_id":`...)
	if e.adID == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, e.adID, 10)
	}
	b = appendField(b, "province", m.provNames[e.prov])
	b = appendField(b, "city", m.cityNames[e.prov][e.city])
	b = append(b, `,"amount":`...)
	if e.cents < 0 {
		b = append(b, "null"...)
	} else {
		b = appendCents(append(b, '"'), e.cents)
		b = append(b, '"')
	}
	b = appendField(b, "properties", m.props[e.props])
	return append(b, '}')
}

func appendCents(b []byte, cents int64) []byte {
	b = strconv.AppendInt(b, cents/100, 10)
	c := cents % 100
	return append(b, '.', byte('0'+c/10), byte('0'+c%10))
}

// appendField appends ,"name":"value" with value escaped as a JSON string.
func appendField(b []byte, name string, v []byte) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":"`...)
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
